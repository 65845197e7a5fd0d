/*
 * The pod sandbox's process (containerd's sandbox_image): holds the pod's namespaces open, does
 * nothing else. As PID 1 of the pod's PID namespace (shareProcessNamespace) it also reaps the
 * orphans it inherits. Exits 0 on SIGINT or SIGTERM.
 *
 *   gcc -static -Os -Wall -Wextra -Werror -o pause pause.c
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_stop(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

/* Nothing to do here: the main loop reaps after every wake-up. */
static void on_child(int signal_number) { (void)signal_number; }

static int install(int signal_number, void (*handler)(int)) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = signal_number == SIGCHLD ? SA_NOCLDSTOP : 0;
    return sigaction(signal_number, &action, NULL);
}

static void reap_children(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        fputs("pause: takes no arguments; waits for SIGINT or SIGTERM\n", stderr);
        return 2;
    }
    if (getpid() != 1) {
        fputs("pause: warning: not PID 1, orphans will not be reaped here\n", stderr);
    }
    if (install(SIGINT, on_stop) || install(SIGTERM, on_stop) || install(SIGCHLD, on_child)) {
        fprintf(stderr, "pause: sigaction: %s\n", strerror(errno));
        return 1;
    }
    /* Block the signals except while waiting in sigsuspend, so none is lost between the check
     * of stop_requested and the wait. */
    sigset_t handled, while_waiting;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &handled, &while_waiting)) {
        fprintf(stderr, "pause: sigprocmask: %s\n", strerror(errno));
        return 1;
    }
    sigdelset(&while_waiting, SIGINT);
    sigdelset(&while_waiting, SIGTERM);
    sigdelset(&while_waiting, SIGCHLD);
    while (!stop_requested) {
        sigsuspend(&while_waiting);
        reap_children();
    }
    return 0;
}
