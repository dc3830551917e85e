/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl vnc NAME: a UNIX socket in a directory only this user may enter (0700); each connection
 * to it gets a fresh Domain.OpenGraphics descriptor (asked with this user's own authorization), and a
 * thread copies between the two until either side closes. Runs until SIGINT/SIGTERM; the socket and its
 * directory are removed then. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "tools/virtbusctl.h"

typedef struct Vnc {
        sd_bus *bus;
        const char *name;
        char *path; /* the domain's object */
} Vnc;

typedef struct Link {
        int a, b;
} Link;

/* Copies what one side sends to the other; at one side's end of input, the other's writing side is
 * shut, and the link ends when both directions have. */
static void *link_run(void *userdata) {
        Link *l = userdata;
        bool open[2] = { true, true }; /* a -> b, b -> a */
        char buf[65536];

        while (open[0] || open[1]) {
                struct pollfd p[2] = {
                        { .fd = open[0] ? l->a : -1, .events = POLLIN },
                        { .fd = open[1] ? l->b : -1, .events = POLLIN },
                };

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        int from = i == 0 ? l->a : l->b, to = i == 0 ? l->b : l->a;
                        ssize_t k;

                        if (!open[i] || !p[i].revents)
                                continue;
                        k = read(from, buf, sizeof buf);
                        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        for (ssize_t off = 0; k > 0 && off < k;) {
                                ssize_t w = send(to, buf + off, (size_t) (k - off), MSG_NOSIGNAL);
                                if (w < 0 && errno == EINTR)
                                        continue;
                                if (w <= 0) {
                                        k = -1;
                                        break;
                                }
                                off += w;
                        }
                        if (k <= 0) {
                                open[i] = false;
                                (void) shutdown(to, SHUT_WR);
                        }
                }
        }
        close(l->a);
        close(l->b);
        free(l);
        return NULL;
}

static int link_start(int client, int display) {
        pthread_attr_t attr;
        pthread_t thread;
        Link *l = new0(Link, 1);
        int r;

        if (!l)
                return -ENOMEM;
        *l = (Link) { .a = client, .b = display };
        r = -pthread_attr_init(&attr);
        if (r == 0)
                r = -pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (r == 0)
                r = -pthread_create(&thread, &attr, link_run, l);
        (void) pthread_attr_destroy(&attr);
        if (r < 0)
                free(l);
        return r;
}

static int on_graphics(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int client = (int) (intptr_t) userdata, fd = -1;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e)
                (void) ctl_error(e, -sd_bus_message_get_errno(m), "OpenGraphics");
        else if (sd_bus_message_read(m, "h", &fd) < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
                fprintf(stderr, "Failed to take the display's descriptor: %s\n", strerror(errno));
        else if (link_start(client, fd) < 0) {
                fprintf(stderr, "Failed to start forwarding a connection\n");
                close(fd);
        } else
                return 0;
        close(client);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Vnc *vnc = userdata;
        int client, r;

        client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0)
                return 0;
        /* A fresh display connection for each viewer, asked without waiting here. */
        r = sd_bus_message_new_method_call(vnc->bus, &m, CTL_SERVICE, vnc->path, CTL_DOMAIN, "OpenGraphics");
        if (r >= 0)
                r = sd_bus_message_append(m, "ut", 0U, UINT64_C(0));
        if (r >= 0)
                r = sd_bus_call_async(vnc->bus, NULL, m, on_graphics, (void *) (intptr_t) client, CTL_CALL_TIMEOUT_USEC);
        if (r < 0) {
                fprintf(stderr, "Failed to ask for the display: %s\n", strerror(-r));
                close(client);
        }
        return 0;
}

/* The directory (0700, only this user may enter it) and the listening socket in it. */
static int vnc_listen(char *dir, char *sock, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (!mkdtemp(dir)) {
                fprintf(stderr, "Failed to make a directory '%s': %s\n", dir, strerror(errno));
                return -CTL_EXIT_FAILED;
        }
        snprintf(sock, size, "%s/vnc", dir);
        if (strlen(sock) >= sizeof sa.sun_path) {
                fprintf(stderr, "The socket path '%s' is too long\n", sock);
                (void) rmdir(dir);
                return -CTL_EXIT_FAILED;
        }
        strcpy(sa.sun_path, sock);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chmod(sock, 0600) < 0 ||
            listen(fd, 16) < 0) {
                fprintf(stderr, "Failed to listen on '%s': %s\n", sock, strerror(errno));
                if (fd >= 0)
                        close(fd);
                (void) unlink(sock);
                (void) rmdir(dir);
                return -CTL_EXIT_FAILED;
        }
        return fd;
}

/* Asks for the display once, so that a domain without one (or a caller not allowed) fails at once. */
static int vnc_probe(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = ctl_call(bus, path, CTL_DOMAIN, "OpenGraphics", &reply, "ut", 0U, UINT64_C(0));
        return r < 0 ? r : 0; /* the reply's descriptor is closed with it */
}

int verb_vnc(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_free_ char *path = NULL, *dir = NULL;
        const char *runtime = getenv("XDG_RUNTIME_DIR");
        char sock[PATH_MAX];
        Vnc vnc = { .bus = bus, .name = argv[0] };
        int fd, r;

        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r >= 0)
                r = vnc_probe(bus, path);
        if (r < 0)
                return r;
        vnc.path = path;
        if (asprintf(&dir, "%s/virtbusctl-vnc-XXXXXX", isempty(runtime) ? "/tmp" : runtime) < 0)
                return -CTL_EXIT_FAILED;
        r = ctl_event_new(&event); /* before any thread */
        if (r < 0)
                return -CTL_EXIT_FAILED;
        (void) signal(SIGPIPE, SIG_IGN);
        fd = vnc_listen(dir, sock, sizeof sock);
        if (fd < 0)
                return fd;
        r = sd_event_add_io(event, NULL, fd, EPOLLIN, on_accept, &vnc);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, 0);
        if (r >= 0) {
                if (arg.json) {
                        Json j;

                        json_begin(&j, stdout);
                        json_object_open(&j);
                        json_key(&j, "name"), json_string(&j, argv[0]);
                        json_key(&j, "path"), json_string(&j, path);
                        json_key(&j, "socket"), json_string(&j, sock);
                        json_object_close(&j);
                        json_end(&j);
                } else
                        printf("%s\n", sock);
                fflush(stdout);
                fprintf(stderr, "VNC viewers may connect to '%s' for the display of domain '%s'; Ctrl+C to stop.\n",
                        sock, argv[0]);
                r = sd_event_loop(event);
                sd_bus_detach_event(bus);
        }
        close(fd);
        (void) unlink(sock);
        (void) rmdir(dir);
        return r < 0 ? -CTL_EXIT_FAILED : 0;
}
