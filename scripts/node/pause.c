/* The pod sandbox of the test node's pods (kcm.local/pause): holds the pod's namespaces,
 * reaps what is reparented to it, exits on SIGINT or SIGTERM. Built static. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int signum) { (void)signum; _exit(0); }

static void reap(int signum) {
    (void)signum;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = leave;
    sigaction(SIGINT, &action, 0);
    sigaction(SIGTERM, &action, 0);
    action.sa_handler = reap;
    action.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, 0);
    for (;;)
        pause();
}
