/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/test-driver-console.h"
#include "util/log.h"

struct TestConsole {
        TestConsole **list;
        char *alias;
        char *prompt;
        int fd;
        sd_event_source *io;
        TestConsole *next;
};

static TestConsole *console_free(TestConsole *c) {
        TestConsole **i;

        for (i = c->list; *i && *i != c; i = &(*i)->next)
                ;
        if (*i)
                *i = c->next;
        sd_event_source_disable_unref(c->io);
        if (c->fd >= 0)
                close(c->fd);
        free(c->alias);
        free(c->prompt);
        free(c);
        return NULL;
}

/* Never waits: what does not fit the socket's buffer is dropped, as a UART would with nobody reading. */
static void say(TestConsole *c, const char *s, size_t n) {
        (void) send(c->fd, s, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        TestConsole *c = userdata;
        char buf[512];
        ssize_t n;

        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                /* The holder closed its end. */
                console_free(c);
                return 0;
        }
        /* Echo, and after Enter a new prompt, like getty with nobody able to log in. */
        for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\r' || buf[i] == '\n') {
                        say(c, "\r\n\r\nLogin incorrect\r\n", 21);
                        say(c, c->prompt, strlen(c->prompt));
                } else
                        say(c, &buf[i], 1);
        }
        return 0;
}

static const DeviceDef *find_device(const DomainDef *live, const char *device) {
        for (size_t i = 0; i < live->n_devices; i++) {
                const DeviceDef *d = live->devices[i];
                if (d->kind != DEVICE_SERIAL && d->kind != DEVICE_CONSOLE)
                        continue;
                if (isempty(device) ? d->kind == DEVICE_CONSOLE : streq_ptr(d->alias, device))
                        return d;
        }
        if (isempty(device))
                for (size_t i = 0; i < live->n_devices; i++)
                        if (live->devices[i]->kind == DEVICE_SERIAL)
                                return live->devices[i];
        return NULL;
}

/* The session on alias, if its holder still has it. */
static TestConsole *find_session(TestConsole **list, const char *alias) {
        for (TestConsole *c = *list; c; c = c->next) {
                struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };

                if (!streq(c->alias, alias))
                        continue;
                /* Closed, but the event loop has not told us yet. */
                if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
                        console_free(c);
                        return NULL;
                }
                return c;
        }
        return NULL;
}

int test_console_open(sd_event *event, TestConsole **list, const DomainDef *live, const char *device, bool force,
                      int *ret_fd, VbError *reterr) {
        const char *name = domain_def_get_name(live);
        const DeviceDef *dev = find_device(live, device);
        TestConsole *c, *held;
        char banner[256];
        int sv[2], r;

        if (!dev)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, isempty(device)
                                            ? "Domain '%s' has no console or serial port%s"
                                            : "Domain '%s' has no console or serial port with alias '%s'",
                                    name, strempty(device));
        held = find_session(list, dev->alias);
        if (held && !force)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY,
                                    "Console '%s' of domain '%s' is open in another session (flag 1 takes it over)",
                                    dev->alias, name);
        if (held)
                console_free(held); /* its holder reads end-of-file */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make a socket pair: %m");
        c = new0(TestConsole, 1);
        if (!c) {
                close(sv[0]);
                close(sv[1]);
                return -ENOMEM;
        }
        *c = (TestConsole) { .list = list, .fd = sv[0], .next = *list };
        *list = c;
        if (!(c->alias = strdup(dev->alias)) || asprintf(&c->prompt, "%s login: ", name) < 0) {
                c->prompt = NULL;
                console_free(c);
                close(sv[1]);
                return -ENOMEM;
        }
        r = sd_event_add_io(event, &c->io, c->fd, EPOLLIN | EPOLLRDHUP, on_io, c);
        if (r < 0) {
                console_free(c);
                close(sv[1]);
                return r;
        }
        snprintf(banner, sizeof banner, "virtbus test driver: simulated console '%s' of domain '%s'\r\n\r\n",
                 dev->alias, name);
        say(c, banner, strlen(banner));
        say(c, c->prompt, strlen(c->prompt));
        *ret_fd = sv[1];
        return 0;
}

void test_console_close_all(TestConsole **list) {
        while (*list)
                console_free(*list);
}
