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
#include <sys/pidfd.h>
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
 * A connection closed early by the caller kills its command. */
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

/* In a child of the server, one per connection: reads the request, forks the command and answers. */
static int serve_connection(int conn, XmlServerHandler handler) {
        _cleanup_free_ char *payload = malloc(REQUEST_MAX + 1);
        _cleanup_free_ char **argv = NULL;
        int fds[REQUEST_FDS] = { -EBADF, -EBADF, -EBADF, -EBADF };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(fds))];
        } control = {};
        struct iovec iov = { .iov_base = payload, .iov_len = REQUEST_MAX + 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        XmlServerReply reply = {};
        struct cmsghdr *c;
        int argc = 0, status;
        ssize_t n;
        pid_t pid;

        if (!payload)
                return -ENOMEM;
        n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -errno;
        c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(fds)))
                memcpy(fds, CMSG_DATA(c), sizeof(fds));
        else if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                        close(((int *) CMSG_DATA(c))[i]);
        if (!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && fds[REQUEST_FDS - 1] >= 0)
                argv = request_argv(payload, n, &argc);
        if (!argv) {
                for (int i = 0; i < REQUEST_FDS; i++)
                        closep(&fds[i]);
                return -EBADMSG;
        }

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(conn);
                run_command(fds, argc, argv, handler);
        }
        for (int i = 0; i < REQUEST_FDS; i++)
                closep(&fds[i]);

        /* A caller that goes away (killed, timed out) takes its command with it. */
        _cleanup_close_ int pidfd = pidfd_open(pid, 0);
        if (pidfd >= 0) {
                struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = conn, .events = POLLIN } };

                while (poll(p, 2, -1) < 0 && errno == EINTR)
                        ;
                if (!(p[0].revents & POLLIN) && p[1].revents)
                        (void) kill(pid, SIGKILL);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFSIGNALED(status))
                reply.signal = WTERMSIG(status);
        else
                reply.exit_status = WEXITSTATUS(status);
        if (send(conn, &reply, sizeof(reply), MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
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

int xml_server_run(char **command, XmlServerHandler handler) {
        _cleanup_close_ int listener = -EBADF, sigfd = -EBADF;
        _cleanup_free_ char *dir = NULL, *path = NULL;
        const char *tmp = getenv("TMPDIR");
        struct sockaddr_un sa;
        sigset_t chld, old;
        pid_t command_pid;
        int status = 0, r;
        bool done = false;

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
        r = unix_address(path, &sa);
        listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (r < 0 || listener < 0 || bind(listener, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(listener, SOMAXCONN) < 0) {
                fprintf(stderr, "virtbus-xml: Failed to listen on '%s': %s\n", path, strerror(r < 0 ? -r : errno));
                remove_socket(dir, path);
                return 1;
        }

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, &old);
        sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sigfd < 0) {
                fprintf(stderr, "virtbus-xml: Failed to watch the server's children: %m\n");
                remove_socket(dir, path);
                return 1;
        }

        fflush(NULL);
        command_pid = fork();
        if (command_pid < 0) {
                fprintf(stderr, "virtbus-xml: Failed to fork: %m\n");
                remove_socket(dir, path);
                return 1;
        }
        if (command_pid == 0) {
                sigprocmask(SIG_SETMASK, &old, NULL);
                if (setenv(XML_SERVER_ENV, path, 1) < 0)
                        _exit(127);
                execvp(command[0], command);
                fprintf(stderr, "virtbus-xml: Failed to run '%s': %m\n", command[0]);
                _exit(127);
        }

        while (!done) {
                struct pollfd p[2] = { { .fd = listener, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
                struct signalfd_siginfo si;
                pid_t pid;
                int st;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents & POLLIN) {
                        _cleanup_close_ int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

                        if (conn >= 0) {
                                fflush(NULL);
                                pid = fork();
                                if (pid == 0) {
                                        close(listener);
                                        close(sigfd);
                                        sigprocmask(SIG_SETMASK, &old, NULL);
                                        _exit(serve_connection(conn, handler) < 0 ? 1 : 0);
                                }
                                /* No child to answer: the caller sees its connection closed. */
                        }
                }
                while (read(sigfd, &si, sizeof(si)) > 0)
                        ;
                while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
                        if (pid == command_pid) {
                                status = st;
                                done = true;
                        }
        }

        /* COMMAND has ended: no new requests; the ones under way (its own children's) finish. */
        closep(&listener);
        listener = -EBADF;
        remove_socket(dir, path);
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (!done)
                return 1;
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}
