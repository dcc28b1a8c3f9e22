/* The docker suite's test program, linked statically (gcc -static) so that
 * it is the whole root filesystem of the base layer: it prints a greeting
 * and the file named by its argument (the message a later layer adds). */
#include <stdio.h>

int main(int argc, char **argv) {
    char buf[4096];
    size_t n;
    FILE *f;

    printf("hello from the docker suite\n");
    if (argc < 2) {
        return 0;
    }
    f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        fwrite(buf, 1, n, stdout);
    }
    fclose(f);
    return 0;
}
