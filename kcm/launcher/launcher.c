/*
 * The kcm command of the self-contained bundle: runs the bundle's own Python (with the
 * bundle's own dynamic loader and C library) on kcm, so the host or container needs
 * neither Python nor a compatible libc, and nothing is extracted at start (unlike a
 * one-file PyInstaller binary). Statically linked; no environment variable is set, so
 * nothing leaks into the workloads kcm starts.
 *
 *   <bundle>/kcm                         this launcher
 *   <bundle>/runtime/lib/LOADER          the dynamic loader (ld-linux-*.so.*)
 *   <bundle>/runtime/lib/*.so*           libc, libpython and the libraries they need
 *   <bundle>/runtime/bin/python3         the interpreter
 *   <bundle>/runtime/lib/pythonX.Y/      the standard library, kcm and its dependencies
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LOADER
#error "build with -DLOADER='\"ld-linux-x86-64.so.2\"' (the loader's file name)"
#endif

static const char MAIN[] = "import sys\nfrom kcm.cli import launched\nsys.exit(launched())\n";

int main(int argc, char **argv) {
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length < 0) {
        fprintf(stderr, "kcm: cannot find the kcm bundle: /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    self[length] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL) {
        fprintf(stderr, "kcm: cannot find the kcm bundle from %s\n", self);
        return 1;
    }
    *slash = '\0';
    char loader[PATH_MAX], libraries[PATH_MAX], python[PATH_MAX];
    if (snprintf(loader, sizeof loader, "%s/runtime/lib/%s", self, LOADER) >= PATH_MAX ||
        snprintf(libraries, sizeof libraries, "%s/runtime/lib", self) >= PATH_MAX ||
        snprintf(python, sizeof python, "%s/runtime/bin/python3", self) >= PATH_MAX) {
        fprintf(stderr, "kcm: the bundle's path is too long\n");
        return 1;
    }
    /* loader --library-path LIB python -I -S -c MAIN argv0 args... : -I ignores PYTHON*
       variables and the user's site directory, -S skips site (kcm's packages sit in the
       stdlib dir); argv0, the name it was run by, tells kcm from cmk (kcm.cli.launched). */
    char **args = calloc((size_t)argc + 8, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "kcm: out of memory\n");
        return 1;
    }
    int n = 0;
    args[n++] = loader;
    args[n++] = "--library-path";
    args[n++] = libraries;
    args[n++] = python;
    args[n++] = "-I";
    args[n++] = "-S";
    args[n++] = "-c";
    args[n++] = (char *)MAIN;
    for (int i = 0; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execv(loader, args);
    fprintf(stderr, "kcm: cannot run %s: %s\n", loader, strerror(errno));
    return 127;
}
