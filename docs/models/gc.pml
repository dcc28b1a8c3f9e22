/*
 * The garbage collector's handshake with writers (docs/GC.md), as a model
 * that spin checks exhaustively.
 *
 * One old blob B exists and no manifest references it, so every collector's
 * mark finds it unreferenced. Writers push a manifest that references B:
 * each first asks whether B exists (HEAD, as docker and skopeo do) and
 * uploads it only if absent; then it PUTs the manifest. Collectors run at
 * the same time as the writers and as each other. The store is
 * linearizable (S3, a local directory): every read below sees the latest
 * write.
 *
 * Safety (the ltl claim at the end): once a manifest that references B was
 * accepted (201), B exists, forever after. A push may fail (the client is
 * told MANIFEST_BLOB_UNKNOWN and pushes again); an accepted one never loses
 * its blob.
 *
 * Run: spin -a gc.pml && gcc -O2 -o pan pan.c && ./pan -a -N safe
 * (scripts/gc-model.sh does it, and the variants below).
 *
 * Each -D flag removes one part of the handshake; spin then finds the
 * interleaving that loses the blob (scripts/gc-model.sh checks that it does):
 *   -DNO_WRITER_CHECK  writers do not look for doom markers (step W2):
 *                      the collector's mark misses a manifest pushed after
 *                      it, the writer's HEAD saw B, the collector deletes
 *                      B after the PUT was accepted: distribution's #3045.
 *   -DNO_RECORDS       the collector does not read push records (step C5):
 *                      a writer that checked the markers before they were
 *                      written is accepted, and B is deleted under it.
 *   -DEAGER_CLEANUP    push records are removed while a run is active (by
 *                      the writer once accepted, or by another collector):
 *                      that run's mark came before the push, the record is
 *                      gone when it looks, and it deletes B.
 *   -DSNAPSHOT_AT_START  (a variant of C8) the runs that block the removal
 *                      are those listed when the run started, not when its
 *                      mark ended: a run announced during the mark may
 *                      have marked before the push.
 * -DNEEDS_ALONE is the earlier C8 (no other run listed at all): safe too,
 * but two collectors that always overlap never remove a record.
 *   -DNO_ANNOUNCE      writers skip the marker check when no run is listed,
 *                      but collectors do not announce their runs (step C1).
 *   -DLEASE_IGNORED    a run's marker is taken for a dead collector's and
 *                      removed while the collector still runs, and the
 *                      collector deletes without checking that its lease
 *                      still holds (the check before each delete is what
 *                      makes marker expiry safe).
 *
 * A collector may also die at any step after its marker (a kill -9): its
 * run and marker stay until their lease runs out, then anyone removes them.
 */

#define NW 2          /* writers */
#define NC 2          /* collectors */

bit blob = 1;         /* B's bytes are in the store */
byte runs = 0;        /* collector runs announced under _registry/gc/runs/ */
byte doomed = 0;      /* doom markers on B (one per run that plans to delete it) */
bit rec[NW];          /* push records (_registry/gc/pushes/...) naming B */
bit accepted[NW];     /* writer i's manifest was accepted (201) */
bit dead[NC];         /* collector c was killed */
bit marked[NC];       /* collector c's doom marker is in the store */
bit listed[NC];       /* collector c's run is listed (announced, not over) */

/* Note which runs are listed (collector-local `before`). */
#define SNAPSHOT j = 0; do :: j < NC -> before[j] = listed[j]; j++ :: j == NC -> break od

#define ANY_ACCEPTED (accepted[0] || accepted[1])

proctype Writer(byte i) {
  bit exists;
  /* The client asks whether B exists; if not, it uploads B. An upload
     completing onto a doomed digest waits until the collector is done with
     it, then stores the bytes again (so this upload is never lost either). */
  exists = blob;
  if
  :: !exists -> atomic { doomed == 0 -> blob = 1 }
  :: else -> skip
  fi;

  /* Manifest PUT. */
  rec[i] = 1;                                   /* W1: push record */
#ifndef NO_WRITER_CHECK
  if                                            /* W2: a run active, B doomed? */
  :: runs > 0 && doomed > 0 -> rec[i] = 0; goto refused
  :: else -> skip
  fi;
#endif
  if                                            /* W3: references exist? */
  :: !blob -> rec[i] = 0; goto refused
  :: else -> skip
  fi;
  accepted[i] = 1;                              /* W4: links written, 201 */
  /* W5: the record may go at once if no run is listed (a run that starts
     later marks after this push); otherwise a collector removes it (C8). */
  bit quiet;
  quiet = (runs == 0);
#ifdef EAGER_CLEANUP
  rec[i] = 0;
#else
  if :: quiet -> rec[i] = 0 :: else -> skip fi;
#endif
  goto done;
refused:                                        /* MANIFEST_BLOB_UNKNOWN */
  skip;
done:
  skip
}

proctype Collector(byte c) {
  bit seen[NW];
  bit before[NC];       /* the runs listed when this run's mark ended */
  bit blocked;
  bit keep = 0;
  byte j;
  byte others;

#ifndef NO_ANNOUNCE
  atomic { runs++; listed[c] = 1 }              /* C1: announce the run */
#endif
#ifdef SNAPSHOT_AT_START
  SNAPSHOT;
#endif
  /* C2: mark, one manifest at a time (a listing is not a snapshot). */
  j = 0;
  do
  :: j < NW -> seen[j] = accepted[j]; j++
  :: j == NW -> break
  od;
  /* The runs listed now, after the mark: a run announced later marks after
     every manifest this mark saw. */
#ifndef SNAPSHOT_AT_START
  SNAPSHOT;
#endif
  /* C3: B is referenced by a marked manifest: nothing to do. */
  if
  :: seen[0] || seen[1] -> goto finish
  :: else -> skip
  fi;
  atomic { doomed++; marked[c] = 1 }            /* C4: doom marker on B */
  if                                            /* killed: lease runs out */
  :: dead[c] = 1; goto killed
  :: skip
  fi;
#ifndef NO_RECORDS
  j = 0;                                        /* C5: read push records */
  do
  :: j < NW -> if :: rec[j] -> keep = 1 :: else -> skip fi; j++
  :: j == NW -> break
  od;
#endif
  if
#ifdef LEASE_IGNORED
  :: !keep -> blob = 0                          /* C6: delete B */
#else
  :: !keep -> atomic {                          /* C6: delete B, if the lease */
       if :: marked[c] -> blob = 0 :: else -> skip fi }   /* is still held */
#endif
  :: else -> skip
  fi;
  atomic { if :: marked[c] -> doomed--; marked[c] = 0 :: else -> skip fi } /* C7 */
finish:
  /* C8: a record whose manifest this run's mark saw may go, unless a run
     listed when this mark ended is still listed (it may have marked before
     that push and still need the record); runs announced since then mark
     after the push. NEEDS_ALONE is the earlier, stricter rule: no other
     run listed at all. */
  others = runs;
  blocked = 0;
  j = 0;
  do
  :: j < NC -> if :: j != c && listed[j] && before[j] -> blocked = 1 :: else -> skip fi; j++
  :: j == NC -> break
  od;
#ifdef NEEDS_ALONE
  blocked = (others > 1);
#endif
  j = 0;
  do
  :: j < NW ->
#ifdef EAGER_CLEANUP
     if :: seen[j] -> rec[j] = 0 :: else -> skip fi;
#else
     if :: seen[j] && !blocked -> rec[j] = 0 :: else -> skip fi;
#endif
     j++
  :: j == NW -> break
  od;
#ifndef NO_ANNOUNCE
  atomic { runs--; listed[c] = 0 }              /* C9: the run is over */
#endif
killed:
  skip
}

/* Removes what a collector left: a dead one's marker and run, once their
   lease ran out, and every finished run's announcement. */
proctype Reaper(byte c) {
#ifdef LEASE_IGNORED
  atomic { marked[c] -> doomed--; marked[c] = 0 };
#else
  atomic { dead[c] && marked[c] -> doomed--; marked[c] = 0 };
#endif
#ifndef NO_ANNOUNCE
  atomic { dead[c] -> runs--; listed[c] = 0 }
#endif
}

init {
  atomic {
    run Writer(0); run Writer(1);
    run Collector(0); run Collector(1);
    run Reaper(0); run Reaper(1)
  }
}

ltl safe { [] (ANY_ACCEPTED -> blob) }
