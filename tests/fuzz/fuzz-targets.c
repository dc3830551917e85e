/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parse paths that take bytes from a D-Bus caller, QEMU or the kernel, one function per fuzz target
 * (see fuzz-targets.h). The XML ones go the whole way a definition goes in virtbusd: text -> schema ->
 * typed definition -> validation -> text (what is stored and shown) -> parsed again (what a restart
 * reads back), and require that the second trip gives the same text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "conf/network-conf.h"
#include "conf/nodedev-conf.h"
#include "drivers/qemu/qemu-monitor.h"
#include "host/uevent.h"
#include "tests/fuzz/fuzz-targets.h"
#include "util/log.h"

#define fuzz_fail(...)                                          \
        do {                                                    \
                fprintf(stderr, "fuzz: " __VA_ARGS__);          \
                fputc('\n', stderr);                            \
                abort();                                        \
        } while (0)

void fuzz_setup(void) {
        const char *d = getenv("VIRTBUS_FUZZ_DEBUG");

        log_set_max_level(d && streq(d, "1") ? LOG_DEBUG : LOG_CRIT);
}

/* The input as a C string, as a D-Bus string argument would be (up to the first NUL). */
static char *as_string(const uint8_t *data, size_t size) {
        char *s = strndup((const char *) data, size);

        if (!s)
                fuzz_fail("out of memory");
        return s;
}

/* A refusal must say what was wrong: an error code and a sentence (only -ENOMEM may come without). */
static void check_refusal(const char *what, int r, VbError *e) {
        if (r >= 0)
                fuzz_fail("%s: returned %d, not a failure", what, r);
        if (r != -ENOMEM && (!vb_error_is_set(e) || !e->message || !e->message[0]))
                fuzz_fail("%s: refused (%s) without an error message", what, strerror(-r));
        vb_error_free(e);
}

/* The text a definition formats to must parse again and format to the same text. */
static void check_same(const char *what, const char *first, const char *second) {
        if (!streq(first, second))
                fuzz_fail("%s: formatting the parsed output changed it:\n--- first\n%s--- second\n%s", what,
                          first, second);
}

static void check_reparse(const char *what, int r, VbError *e, const char *text) {
        if (r < 0)
                fuzz_fail("%s: our own output is refused (%s): %s\n%s", what, strerror(-r),
                          strempty(e->message), text);
}

int fuzz_domain(const uint8_t *data, size_t size) {
        _cleanup_free_ char *xml = as_string(data, size), *out = NULL, *out2 = NULL;
        _cleanup_(domain_def_freep) DomainDef *def = NULL, *def2 = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = domain_def_parse_string(xml, DOMAIN_PARSE_STABLE_DEFAULTS, &def, &e);
        if (r < 0) {
                check_refusal("domain parse", r, &e);
                return 0;
        }
        r = domain_def_validate(def, &e);
        if (r < 0)
                check_refusal("domain validate", r, &e);
        if (domain_def_format(def, DOMAIN_FORMAT_SECURE, &out) < 0)
                fuzz_fail("domain: formatting a parsed definition failed");
        r = domain_def_parse_string(out, DOMAIN_PARSE_STABLE_DEFAULTS, &def2, &e);
        check_reparse("domain", r, &e, out);
        if (domain_def_format(def2, DOMAIN_FORMAT_SECURE, &out2) < 0)
                fuzz_fail("domain: formatting the re-parsed definition failed");
        check_same("domain", out, out2);
        /* What a caller without the secrets is shown must be a definition too. */
        free(out2);
        out2 = NULL;
        def2 = domain_def_free(def2);
        if (domain_def_format(def, 0, &out2) < 0)
                fuzz_fail("domain: formatting without secrets failed");
        r = domain_def_parse_string(out2, DOMAIN_PARSE_STABLE_DEFAULTS, &def2, &e);
        check_reparse("domain (without secrets)", r, &e, out2);
        return 1;
}

int fuzz_device(const uint8_t *data, size_t size) {
        _cleanup_free_ char *xml = as_string(data, size), *out = NULL, *out2 = NULL;
        _cleanup_(device_def_freep) DeviceDef *def = NULL, *def2 = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = device_def_parse_string(xml, DEVICE_PARSE_STABLE_DEFAULTS, &def, &e);
        if (r < 0) {
                check_refusal("device parse", r, &e);
                return 0;
        }
        r = device_def_validate(def, &e);
        if (r < 0)
                check_refusal("device validate", r, &e);
        if (device_def_format(def, DEVICE_FORMAT_SECURE, &out) < 0)
                fuzz_fail("device: formatting a parsed device failed");
        r = device_def_parse_string(out, DEVICE_PARSE_STABLE_DEFAULTS, &def2, &e);
        check_reparse("device", r, &e, out);
        if (device_def_format(def2, DEVICE_FORMAT_SECURE, &out2) < 0)
                fuzz_fail("device: formatting the re-parsed device failed");
        check_same("device", out, out2);
        free(out2);
        out2 = NULL;
        def2 = device_def_free(def2);
        if (device_def_format(def, 0, &out2) < 0)
                fuzz_fail("device: formatting without secrets failed");
        r = device_def_parse_string(out2, DEVICE_PARSE_STABLE_DEFAULTS, &def2, &e);
        check_reparse("device (without secrets)", r, &e, out2);
        return 1;
}

int fuzz_network(const uint8_t *data, size_t size) {
        _cleanup_free_ char *xml = as_string(data, size), *out = NULL, *out2 = NULL;
        _cleanup_(network_def_freep) NetworkDef *def = NULL, *def2 = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = network_def_parse_string(xml, NETWORK_PARSE_STABLE_DEFAULTS, &def, &e);
        if (r < 0) {
                check_refusal("network parse", r, &e);
                return 0;
        }
        r = network_def_validate(def, &e);
        if (r < 0)
                check_refusal("network validate", r, &e);
        if (network_def_format(def, &out) < 0)
                fuzz_fail("network: formatting a parsed definition failed");
        r = network_def_parse_string(out, NETWORK_PARSE_STABLE_DEFAULTS, &def2, &e);
        check_reparse("network", r, &e, out);
        if (network_def_format(def2, &out2) < 0)
                fuzz_fail("network: formatting the re-parsed definition failed");
        check_same("network", out, out2);
        return 1;
}

int fuzz_nodedev(const uint8_t *data, size_t size) {
        _cleanup_free_ char *xml = as_string(data, size), *out = NULL, *out2 = NULL;
        _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL, *def2 = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = nodedev_def_parse_string(xml, &def, &e);
        if (r < 0) {
                check_refusal("nodedev parse", r, &e);
                return 0;
        }
        if (nodedev_def_format(def, &out) < 0)
                fuzz_fail("nodedev: formatting a parsed device failed");
        r = nodedev_def_parse_string(out, &def2, &e);
        check_reparse("nodedev", r, &e, out);
        if (nodedev_def_format(def2, &out2) < 0)
                fuzz_fail("nodedev: formatting the re-parsed device failed");
        check_same("nodedev", out, out2);
        return 1;
}

typedef struct QmpState {
        unsigned events, replies;
        bool closed;
} QmpState;

static void qmp_on_event(QemuMonitor *mon, const char *name, struct json_object *data, void *userdata) {
        QmpState *s = userdata;

        /* What the driver reads of an event: its name and members of its data. */
        if (!name)
                fuzz_fail("qmp: an event without a name");
        (void) qemu_json_string(data, "device");
        (void) qemu_json_get(data, "reason");
        s->events++;
}

static void qmp_on_closed(QemuMonitor *mon, void *userdata) {
        QmpState *s = userdata;

        s->closed = true;
}

static void qmp_on_reply(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QmpState *s = userdata;

        (void) qemu_json_string(ret, "status");
        if (error && !error[0])
                fuzz_fail("qmp: an empty error description");
        s->replies++;
}

/* The input is everything QEMU says, from the greeting on, then it closes the socket. Ids: 1 is
 * qmp_capabilities, 2 an asynchronous call, 3 a synchronous one; seeds answer them in that order. */
int fuzz_qmp(const uint8_t *data, size_t size) {
        static const QemuMonitorCallbacks cb = { .event = qmp_on_event, .closed = qmp_on_closed };
        _cleanup_(qemu_monitor_freep) QemuMonitor *mon = NULL;
        _cleanup_(json_object_putp) struct json_object *ret = NULL;
        _cleanup_free_ char *error = NULL;
        QmpState s = {};
        sd_event *event = NULL;
        int fds[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
                fuzz_fail("socketpair: %m");
        /* A socket's queue holds far more than the fuzzer's inputs (-max_len in README.md). */
        for (size_t done = 0; done < size;) {
                ssize_t n = write(fds[1], data + done, size - done);
                if (n <= 0)
                        fuzz_fail("qmp: could not queue %zu bytes: %m", size);
                done += (size_t) n;
        }
        (void) shutdown(fds[1], SHUT_WR);
        if (sd_event_new(&event) < 0)
                fuzz_fail("sd_event_new failed");

        r = qemu_monitor_open_fd(event, fds[0], "fuzz", -1, 1000 * 1000, &cb, &s, &mon, &error);
        if (r >= 0) {
                if (qemu_monitor_call(mon, "query-status", NULL, qmp_on_reply, &s) >= 0) {
                        r = qemu_monitor_call_sync(mon, "query-pci", NULL, 1000 * 1000, &ret, &error);
                        if (r == -EIO && !error)
                                fuzz_fail("qmp: a refused command without QEMU's description");
                }
                /* Dispatch what was read until the end of the input closes the monitor. */
                for (unsigned i = 0; i < 64 && !s.closed; i++)
                        if (sd_event_run(event, 0) < 0)
                                break;
                if (!s.closed)
                        fuzz_fail("qmp: the end of QEMU's output did not close the monitor");
                r = 1;
        } else
                r = 0;
        mon = qemu_monitor_free(mon);
        close(fds[1]);
        sd_event_unref(event);
        return r;
}

int fuzz_uevent(const uint8_t *data, size_t size) {
        /* Exactly the bytes received, nothing after them: a read past the end is a sanitizer report. */
        _cleanup_free_ char *buf = malloc(size ?: 1);
        HostUevent u;
        int r;

        if (!buf)
                fuzz_fail("out of memory");
        memcpy(buf, data, size);
        r = host_uevent_parse(buf, size, &u);
        if (r < 0 && r != -EBADMSG)
                fuzz_fail("uevent: unexpected error %d", r);
        if (r <= 0)
                return 0;
        if (!u.action || !u.devpath)
                fuzz_fail("uevent: accepted without an action or a path");
        /* Every string points into the message and ends there. */
        const char *strings[] = { u.action, u.devpath, u.subsystem, u.devtype };
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                const char *p = strings[i];

                if (p && (p < buf || p >= buf + size || !memchr(p, 0, (size_t) (buf + size - p))))
                        fuzz_fail("uevent: a string that does not end inside the message");
        }
        return 1;
}
