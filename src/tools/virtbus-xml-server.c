/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf-schema.h"
#include "tools/virtbus-xml-server.h"
#include "util/macro.h"

/* The protocol, over a SOCK_SEQPACKET connection per command:
 *   request: one message, the arguments (argv[0] included) each ended by a NUL, with SCM_RIGHTS carrying
 *            the caller's stdin, stdout, stderr and working directory (an O_PATH descriptor);
 *   reply:   one XmlServerReply once the command has ended.
 * A connection closed early by the caller kills its command. The server's one process reads requests
 * and forks the commands; it never blocks on a caller. */
#define REQUEST_MAX (64 * 1024)
#define REQUEST_FDS 4

typedef struct XmlServerReply {
        int32_t exit_status; /* when signal is 0 */
        int32_t signal;
} XmlServerReply;

static void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static int unix_address(const char *path, struct sockaddr_un *ret) {
        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(ret->sun_path))
                return -ENAMETOOLONG;
        strcpy(ret->sun_path, path);
        return 0;
}

/* Client ---------------------------------------------------------------------------------------------- */

static void die_like(int sig) {
        sigset_t set;

        signal(sig, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        _exit(128 + sig); /* a signal that does not end a process by default */
}

int xml_server_call(const char *path, int argc, char *argv[]) {
        _cleanup_close_ int fd = -EBADF, cwd = -EBADF;
        _cleanup_free_ char *payload = NULL;
        struct sockaddr_un sa;
        size_t size = 0;
        int r;

        r = unix_address(path, &sa);
        if (r < 0)
                return r;
        for (int i = 0; i < argc; i++)
                size += strlen(argv[i]) + 1;
        if (size > REQUEST_MAX)
                return -E2BIG;
        payload = malloc(size ?: 1);
        if (!payload)
                return -ENOMEM;
        size = 0;
        for (int i = 0; i < argc; i++) {
                size_t n = strlen(argv[i]) + 1;

                memcpy(payload + size, argv[i], n);
                size += n;
        }
        /* The command runs in the caller's stead: all three standard streams must be there to pass. */
        for (int i = 0; i < 3; i++)
                if (fcntl(i, F_GETFD) < 0)
                        return -errno;
        cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0)
                return -errno;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;

        int fds[REQUEST_FDS] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, cwd };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(fds))];
        } control = {};
        struct iovec iov = { .iov_base = payload, .iov_len = size };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                return -errno;

        /* From here on the command may have run: its answer is the only one. */
        XmlServerReply reply;
        ssize_t n;

        do
                n = recv(fd, &reply, sizeof(reply), 0);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t) sizeof(reply)) {
                fprintf(stderr, "virtbus-xml: the server at '%s' gave no answer: %s\n", path,
                        n < 0 ? strerror(errno) : "connection closed");
                return 1;
        }
        if (reply.signal > 0 && reply.signal < NSIG)
                die_like(reply.signal);
        return reply.exit_status;
}

/* Server ---------------------------------------------------------------------------------------------- */

/* The request's arguments, split in place; NULL-terminated. */
static char **request_argv(char *payload, size_t size, int *ret_argc) {
        char **argv;
        int argc = 0;

        if (size == 0 || payload[size - 1] != '\0')
                return NULL;
        for (size_t i = 0; i < size; i++)
                argc += payload[i] == '\0';
        argv = new0(char *, argc + 1);
        if (!argv)
                return NULL;
        argc = 0;
        for (size_t i = 0; i < size; i += strlen(payload + i) + 1)
                argv[argc++] = payload + i;
        *ret_argc = argc;
        return argv;
}

/* In the command's process: the caller's streams and directory, then the normal code path. */
static _Noreturn void run_command(int fds[REQUEST_FDS], int argc, char **argv, XmlServerHandler handler) {
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        _exit(127);
        if (fchdir(fds[3]) < 0) {
                fprintf(stderr, "virtbus-xml: Failed to enter the caller's directory: %m\n");
                exit(1);
        }
        for (int i = 0; i < REQUEST_FDS; i++)
                if (fds[i] > 2)
                        close(fds[i]);
        exit(handler(argc, argv));
}

typedef struct Conn {
        int fd;
        pid_t pid;   /* the command's; 0 while the request has not come */
        bool killed; /* its caller went away */
} Conn;

typedef struct Server {
        int listener, sigfd;
        sigset_t old_mask;
        Conn *conns;
        size_t n_conns, allocated;
        XmlServerHandler handler;
} Server;

static char request_buf[REQUEST_MAX + 1];

/* Reads conn's request and forks its command: its pid, 0 when the request is not there yet, -errno when
 * it cannot be served (the caller sees its connection closed without an answer). */
static pid_t start_command(Server *s, int conn) {
        _cleanup_free_ char **argv = NULL;
        int fds[REQUEST_FDS] = { -EBADF, -EBADF, -EBADF, -EBADF };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(fds))];
        } control = {};
        struct iovec iov = { .iov_base = request_buf, .iov_len = sizeof(request_buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        struct cmsghdr *c;
        int argc = 0;
        ssize_t n;
        pid_t pid;

        n = recvmsg(conn, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0)
                return -ECONNRESET;
        c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(fds)))
                memcpy(fds, CMSG_DATA(c), sizeof(fds));
        else if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                        close(((int *) CMSG_DATA(c))[i]);
        if (!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && fds[REQUEST_FDS - 1] >= 0)
                argv = request_argv(request_buf, n, &argc);
        if (!argv) {
                for (int i = 0; i < REQUEST_FDS; i++)
                        closep(&fds[i]);
                return -EBADMSG;
        }

        fflush(NULL);
        pid = fork();
        if (pid == 0) {
                close(s->listener);
                close(s->sigfd);
                for (size_t i = 0; i < s->n_conns; i++)
                        if (s->conns[i].fd >= 0)
                                close(s->conns[i].fd);
                sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
                run_command(fds, argc, argv, s->handler);
        }
        for (int i = 0; i < REQUEST_FDS; i++)
                closep(&fds[i]);
        return pid < 0 ? -errno : pid;
}

/* A command has ended: its caller gets the status, and the connection is done. */
static void command_ended(Server *s, pid_t pid, int status) {
        XmlServerReply reply = {};

        for (size_t i = 0; i < s->n_conns; i++) {
                Conn *c = &s->conns[i];

                if (c->pid != pid || c->fd < 0)
                        continue;
                if (WIFSIGNALED(status))
                        reply.signal = WTERMSIG(status);
                else
                        reply.exit_status = WEXITSTATUS(status);
                if (!c->killed)
                        (void) send(c->fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
                close(c->fd);
                c->fd = -EBADF;
        }
}

static void conn_event(Server *s, Conn *c) {
        pid_t pid;

        if (c->pid == 0) {
                pid = start_command(s, c->fd);
                if (pid > 0)
                        c->pid = pid;
                else if (pid < 0) {
                        close(c->fd);
                        c->fd = -EBADF;
                }
                return;
        }
        /* Anything more from a caller whose command runs is its hang-up (killed, timed out): the command
         * goes with it. */
        (void) kill(c->pid, SIGKILL);
        c->killed = true;
}

static void conns_compact(Server *s) {
        size_t k = 0;

        for (size_t i = 0; i < s->n_conns; i++)
                if (s->conns[i].fd >= 0)
                        s->conns[k++] = s->conns[i];
        s->n_conns = k;
}

static void remove_socket(char *dir, const char *path) {
        if (path)
                (void) unlink(path);
        if (dir)
                (void) rmdir(dir);
}

static void *compile_thread(void *userdata) {
        int *r = userdata;

        *r = conf_schema_compile_all();
        return NULL;
}

/* The schemas are compiled in a thread of their own so that they live in a malloc arena of their own:
 * compiling leaves freed chunks between the compiled ones, which a child's allocations would reuse,
 * writing to (and so copying, a page fault each) pages of the compiled schemas in every child. Forked
 * from the main thread, the children allocate from the main thread's arena, untouched by compiling. */
static int compile_schemas(void) {
        pthread_t t;
        int r = -EIO, k;

        k = pthread_create(&t, NULL, compile_thread, &r);
        if (k != 0)
                return -k;
        k = pthread_join(t, NULL);
        if (k != 0)
                return -k;
        (void) malloc_trim(0);
        return r;
}

static void server_done(Server *s) {
        if (s->listener >= 0)
                close(s->listener);
        if (s->sigfd >= 0)
                close(s->sigfd);
        for (size_t i = 0; i < s->n_conns; i++)
                if (s->conns[i].fd >= 0)
                        close(s->conns[i].fd);
        free(s->conns);
        sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
}

static int server_listen(Server *s, const char *path) {
        struct sockaddr_un sa;
        sigset_t chld;
        int r;

        r = unix_address(path, &sa);
        if (r < 0)
                return r;
        s->listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->listener < 0 || bind(s->listener, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(s->listener, SOMAXCONN) < 0)
                return -errno;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, &s->old_mask);
        s->sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
        return s->sigfd < 0 ? -errno : 0;
}

/* Serves requests until command_pid ends; returns its wait status, or -errno. */
static int server_loop(Server *s, pid_t command_pid) {
        _cleanup_free_ struct pollfd *p = NULL;
        size_t p_allocated = 0;

        for (;;) {
                struct signalfd_siginfo si;
                size_t n_polled = s->n_conns;
                pid_t pid;
                int st;

                if (!GREEDY_REALLOC(p, p_allocated, n_polled + 2))
                        return -ENOMEM;
                p[0] = (struct pollfd) { .fd = s->listener, .events = POLLIN };
                p[1] = (struct pollfd) { .fd = s->sigfd, .events = POLLIN };
                for (size_t i = 0; i < n_polled; i++)
                        p[2 + i] = (struct pollfd) { .fd = s->conns[i].killed ? -1 : s->conns[i].fd,
                                                     .events = POLLIN };
                if (poll(p, n_polled + 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (size_t i = 0; i < n_polled; i++)
                        if (p[2 + i].revents)
                                conn_event(s, &s->conns[i]);
                if (p[0].revents & POLLIN) {
                        int conn = accept4(s->listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                        if (conn >= 0 && GREEDY_REALLOC(s->conns, s->allocated, s->n_conns + 1))
                                s->conns[s->n_conns++] = (Conn) { .fd = conn };
                        else if (conn >= 0)
                                close(conn); /* the caller sees no answer */
                }
                while (read(s->sigfd, &si, sizeof(si)) > 0)
                        ;
                while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                        if (pid == command_pid) {
                                conns_compact(s);
                                return st;
                        }
                        command_ended(s, pid, st);
                }
                conns_compact(s);
        }
}

#if defined(__SANITIZE_ADDRESS__)
#  define SERVE_UNDER_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SERVE_UNDER_ASAN 1
#  endif
#endif

int xml_server_run(char **command, XmlServerHandler handler) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        Server s = { .listener = -EBADF, .sigfd = -EBADF, .handler = handler };
        const char *tmp = getenv("TMPDIR");
        pid_t command_pid;
        int status, r;

#ifdef SERVE_UNDER_ASAN
        /* Under AddressSanitizer a served run costs three times a plain one (measured: each fork copies
         * the page tables of the shadow memory, and each child's leak check scans the compiled schemas
         * too): COMMAND runs plain virtbus-xml instead. */
        execvp(command[0], command);
        fprintf(stderr, "virtbus-xml: Failed to run '%s': %m\n", command[0]);
        return 127;
#endif
        sigprocmask(SIG_SETMASK, NULL, &s.old_mask);
        r = compile_schemas();
        if (r < 0) {
                fprintf(stderr, "virtbus-xml: Failed to compile the schemas: %s\n", strerror(-r));
                return 1;
        }
        if (asprintf(&dir, "%s/virtbus-xml-XXXXXX", isempty(tmp) ? "/tmp" : tmp) < 0 ||
            !mkdtemp(dir) || asprintf(&path, "%s/socket", dir) < 0) {
                fprintf(stderr, "virtbus-xml: Failed to make the server's directory: %m\n");
                return 1;
        }
        r = server_listen(&s, path);
        if (r < 0) {
                fprintf(stderr, "virtbus-xml: Failed to listen on '%s': %s\n", path, strerror(-r));
                server_done(&s);
                remove_socket(dir, path);
                return 1;
        }

        fflush(NULL);
        command_pid = fork();
        if (command_pid < 0) {
                fprintf(stderr, "virtbus-xml: Failed to fork: %m\n");
                server_done(&s);
                remove_socket(dir, path);
                return 1;
        }
        if (command_pid == 0) {
                sigprocmask(SIG_SETMASK, &s.old_mask, NULL);
                if (setenv(XML_SERVER_ENV, path, 1) < 0)
                        _exit(127);
                execvp(command[0], command);
                fprintf(stderr, "virtbus-xml: Failed to run '%s': %m\n", command[0]);
                _exit(127);
        }

        status = server_loop(&s, command_pid);
        /* COMMAND has ended (or the server failed): no new requests; those under way (its own
         * children's) are answered when they end. */
        close(s.listener);
        s.listener = -EBADF;
        remove_socket(dir, path);
        for (size_t i = 0; i < s.n_conns; i++) {
                int st;

                if (s.conns[i].pid > 0 && waitpid(s.conns[i].pid, &st, 0) == s.conns[i].pid)
                        command_ended(&s, s.conns[i].pid, st);
        }
        if (status < 0) {
                fprintf(stderr, "virtbus-xml: The server failed: %s\n", strerror(-status));
                (void) waitpid(command_pid, &status, 0);
                status = 1 << 8;
        }
        server_done(&s);
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}
