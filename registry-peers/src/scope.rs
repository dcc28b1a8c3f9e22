//! Whether the current task serves a peer: such reads go straight to the
//! store under the [`PeerStore`](crate::PeerStore), never to another peer
//! (no loops, however the members' views of the owners differ).

use std::future::Future;

tokio::task_local! {
    static SERVING_PEER: ();
}

/// Run `f` as the answer to a peer's request: every [`PeerStore`]
/// read awaited inside it reads its inner store.
///
/// [`PeerStore`]: crate::PeerStore
pub async fn serving_peer<F: Future>(f: F) -> F::Output {
    SERVING_PEER.scope((), f).await
}

/// Whether the current task runs inside [`serving_peer`].
pub fn is_peer_request() -> bool {
    SERVING_PEER.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_inside_the_scope() {
        assert!(!is_peer_request());
        assert!(serving_peer(async { is_peer_request() }).await);
        assert!(!is_peer_request());
    }
}
