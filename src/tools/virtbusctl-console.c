/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl console (OpenConsole: the terminal in raw mode, Ctrl+] to leave) and edit ($EDITOR on the
 * saved definition, redefined on save, reopened with the error until it is accepted or left unchanged). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "tools/virtbusctl.h"
#include "util/fileio.h"

#define CONSOLE_ESCAPE 0x1d /* Ctrl+] */

static int write_full(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd w = { .fd = fd, .events = POLLOUT };
                                (void) poll(&w, 1, -1);
                                continue;
                        }
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Copies between the terminal and the console until the console ends, Ctrl+] (on a terminal), or, once
 * the input has ended (piped input), the console has said nothing for --idle-timeout seconds: the
 * guest's answer to the last input has drained. */
static int console_pump(int fd, bool tty) {
        int idle_ms = (int) (arg.idle_timeout * 1000);
        bool input_open = true;
        char buf[4096];

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = fd, .events = POLLIN },
                        { .fd = input_open ? STDIN_FILENO : -1, .events = POLLIN },
                };
                ssize_t k;
                int n;

                n = poll(p, 2, input_open ? -1 : idle_ms);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0; /* quiet since the input ended */
                if (p[0].revents) {
                        k = read(fd, buf, sizeof buf);
                        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (k <= 0)
                                return 0; /* the session ended: the domain stopped, or another took over */
                        if (write_full(STDOUT_FILENO, buf, (size_t) k) < 0)
                                return -EIO;
                }
                if (p[1].revents) {
                        char *esc;

                        k = read(STDIN_FILENO, buf, sizeof buf);
                        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (k <= 0) {
                                /* No more input: keep showing the guest's output until it is quiet. The
                                 * session stays open meanwhile (a serial line has no end-of-input). */
                                input_open = false;
                                continue;
                        }
                        esc = tty ? memchr(buf, CONSOLE_ESCAPE, (size_t) k) : NULL;
                        if (write_full(fd, buf, esc ? (size_t) (esc - buf) : (size_t) k) < 0)
                                return 0;
                        if (esc)
                                return 0;
                }
        }
}

int verb_console(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        struct termios saved, raw;
        bool tty = isatty(STDIN_FILENO);
        int fd, r;

        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r >= 0)
                r = ctl_call(bus, path, CTL_DOMAIN, "OpenConsole", &reply, "st", argc > 1 ? argv[1] : "",
                             (uint64_t) (arg.force ? 1 : 0));
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "h", &fd) < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
                return -CTL_EXIT_FAILED;
        /* Done with the bus: don't keep the reply's copy of the descriptor open. */
        reply = sd_bus_message_unref(reply);

        if (tty) {
                fprintf(stderr, "Connected to domain '%s'. Press Ctrl+] to leave.\r\n", argv[0]);
                if (tcgetattr(STDIN_FILENO, &saved) < 0)
                        tty = false;
        }
        if (tty) {
                raw = saved;
                cfmakeraw(&raw);
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        }
        (void) signal(SIGPIPE, SIG_IGN);
        r = console_pump(fd, tty);
        close(fd);
        if (tty) {
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
                fprintf(stderr, "\nDisconnected from domain '%s'.\n", argv[0]);
        }
        if (r < 0) {
                fprintf(stderr, "Console of '%s' failed: %s\n", argv[0], strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        return 0;
}

/* edit ----------------------------------------------------------------------------------------- */

#define EDIT_MARK "<!-- virtbusctl: "

/* Runs $VISUAL / $EDITOR (through the shell, so that it may carry arguments) on file. */
static int run_editor(const char *file) {
        const char *editor = getenv("VISUAL");
        _cleanup_free_ char *cmd = NULL;
        int status;
        pid_t pid;

        if (isempty(editor))
                editor = getenv("EDITOR");
        if (isempty(editor))
                editor = "vi";
        if (asprintf(&cmd, "%s \"$1\"", editor) < 0)
                return -ENOMEM;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                execl("/bin/sh", "sh", "-c", cmd, "sh", file, (char *) NULL);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "The editor '%s' failed (status %d); nothing changed.\n", editor,
                        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
                return -ECANCELED;
        }
        return 0;
}

/* What the user wrote, without our error comment at the top. */
static const char *strip_mark(const char *text) {
        const char *end;

        if (strncmp(text, EDIT_MARK, strlen(EDIT_MARK)) != 0 || !(end = strstr(text, "-->")))
                return text;
        end += 3;
        return *end == '\n' ? end + 1 : end;
}

/* The file again: the error as an XML comment ("--" is not allowed in one), then what the user wrote. */
static int write_with_error(const char *file, const char *message, const char *text) {
        _cleanup_free_ char *msg = strdup(message), *all = NULL;
        char *p;

        if (!msg)
                return -ENOMEM;
        while ((p = strstr(msg, "--")))
                p[1] = ' ';
        if (asprintf(&all,
                     EDIT_MARK "error: %s\n"
                     "     Fix the definition and save it, or quit without changes to give up. -->\n%s",
                     msg, text) < 0)
                return -ENOMEM;
        return write_file_atomic(file, all, strlen(all), 0600);
}

int verb_edit(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_free_ char *xml = NULL, *before = NULL;
        char file[] = "/tmp/virtbusctl-edit-XXXXXX.xml";
        int fd, r, ret = 0;

        r = ctl_domain_xml(bus, argv[0], 1 /* the saved definition */, &xml);
        if (r < 0)
                return r;
        fd = mkstemps(file, 4);
        if (fd < 0 || write_all_fd(fd, xml, strlen(xml)) < 0) {
                fprintf(stderr, "Failed to write a temporary file: %s\n", strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -CTL_EXIT_FAILED;
        }
        close(fd);
        before = strdup(xml);

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *edited = NULL;
                const char *text;

                if (run_editor(file) < 0 || read_full_file(file, 0, &edited, NULL) < 0) {
                        ret = -CTL_EXIT_FAILED;
                        break;
                }
                if (before && streq(edited, before)) {
                        /* Unchanged: nothing to do, or given up after an error. */
                        if (ret == 0)
                                printf("Domain '%s' not changed.\n", argv[0]);
                        break;
                }
                text = strip_mark(edited);
                r = sd_bus_call_method(bus, CTL_SERVICE, CTL_MANAGER_PATH, CTL_MANAGER, "DefineDomain", &e, &reply,
                                       "st", text, UINT64_C(0));
                if (r >= 0) {
                        printf("Domain '%s' redefined.\n", argv[0]);
                        ret = 0;
                        break;
                }
                ret = -ctl_error(&e, r, "DefineDomain");
                if (ret == -CTL_EXIT_DENIED || ret == -CTL_EXIT_NO_SUCH)
                        break; /* editing again would not help */
                /* Reopen with the error on top; the saved definition is unchanged. */
                if (write_with_error(file, e.message ?: strerror(-r), text) < 0) {
                        ret = -CTL_EXIT_FAILED;
                        break;
                }
                free(before);
                before = NULL;
                (void) read_full_file(file, 0, &before, NULL);
        }
        (void) unlink(file);
        return ret;
}
