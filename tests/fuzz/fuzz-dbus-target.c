/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz_dbus(): D-Bus method calls against an in-process virtbusd (test driver, per-user mode: no polkit)
 * over a direct connection on a socketpair. The daemon's side is what src/daemon/main.c sets up; the
 * client is the fuzzer. Each input is a short program: per call, an object path (one of the live objects,
 * or bytes of the input), an interface and member (one of those introspected at start-up, or bytes of
 * the input), and arguments built from the input for the member's signature: strings are bytes of the
 * input or XML documents of each kind with bytes of the input spliced in, flags are 0, small or any
 * 64 bits. Every call must get a reply or an error within a bounded time; crashes, sanitizer reports and
 * leaks are what libFuzzer watches for. */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus/bus-server.h"
#include "core/manager.h"
#include "tests/fuzz/fuzz-targets.h"
#include "util/log.h"
#include "util/macro.h"

#define CALLS_MAX 8
#define REPLY_TIMEOUT_USEC (20ULL * 1000 * 1000)
/* Objects the fuzzer made beyond these are removed again, so that the daemon does not grow for ever. */
#define DOMAINS_MAX 32

typedef struct Method {
        char *interface, *member, *signature;
} Method;

typedef struct Daemon {
        char *dir;
        sd_event *event;
        Manager *manager;
        sd_bus *server_bus, *client;
        BusServer *server;
        Method *methods;
        size_t n_methods;
        char **paths;
        size_t n_paths;
        int null_fd;
} Daemon;

static Daemon daemon_instance;

/* The input, read front to back; zeros once it is used up. */
typedef struct Input {
        const uint8_t *p;
        size_t left;
} Input;

static uint8_t next_byte(Input *in) {
        if (in->left == 0)
                return 0;
        in->left--;
        return *in->p++;
}

static uint64_t next_u64(Input *in) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | next_byte(in);
        return v;
}

static const char * const documents[] = {
        "<domain type='test'><name>fz</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>",
        "<domain type='test'><name>fz2</name><uuid>f0f0f0f0-0000-4000-8000-000000000001</uuid><memory>65536</memory>"
        "<vcpu>2</vcpu><os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='/tmp/x.img'/>"
        "<target dev='vda' bus='virtio'/></disk><interface type='network'><source network='default'/></interface>"
        "<graphics type='vnc' passwd='secret'/></devices></domain>",
        "<disk type='file' device='disk'><source file='/tmp/y.img'/><target dev='vdb' bus='virtio'/></disk>",
        "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>",
        "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='3' slot='0' "
        "function='1'/></source></hostdev>",
        "<network><name>fznet</name><bridge name='vbfz0'/><forward mode='nat'/><ip address='10.9.9.1' "
        "netmask='255.255.255.0'><dhcp><range start='10.9.9.2' end='10.9.9.9'/></dhcp></ip></network>",
        "<pool type='dir'><name>fzpool</name><target><path>/tmp/fzpool</path></target></pool>",
        "<volume><name>v.qcow2</name><capacity unit='MiB'>1</capacity><target><format type='qcow2'/></target></volume>",
        "<memballoon model='virtio'/>",
        "<console type='pty'/>",
};

static const char * const names[] = { "fz", "fz2", "fznet", "fzpool", "default", "v.qcow2", "" };

/* A valid UTF-8 string made of the next bytes (ASCII, NUL and high bytes folded into printable ones). */
static char *input_string(Input *in, size_t max) {
        size_t n = next_byte(in);
        char *s;

        if (n > max)
                n = max;
        s = malloc(n + 1);
        if (!s)
                abort();
        for (size_t i = 0; i < n; i++) {
                uint8_t c = next_byte(in);
                s[i] = c == 0 ? ' ' : c >= 0x80 ? (char) ('<' + (c & 0x3f)) : (char) c;
        }
        s[n] = 0;
        return s;
}

/* A document of some kind with bytes of the input in the middle of it, or the document cut short. */
static char *input_document(Input *in) {
        const char *doc = documents[next_byte(in) % ELEMENTSOF(documents)];
        size_t len = strlen(doc), at = len ? next_byte(in) * len / 256 : 0;
        _cleanup_free_ char *middle = NULL;
        char *s = NULL;
        uint8_t how = next_byte(in) % 4;

        if (how == 0)
                return strdup(doc) ?: (abort(), NULL);
        if (how == 1) /* cut */
                return strndup(doc, at) ?: (abort(), NULL);
        middle = input_string(in, 64);
        if (asprintf(&s, "%.*s%s%s", (int) at, doc, middle, doc + (how == 2 ? at : at + strlen(middle) > len ? len : at + strlen(middle))) < 0)
                abort();
        return s;
}

static char *input_text(Input *in) {
        uint8_t k = next_byte(in) % 4;

        if (k == 0)
                return input_document(in);
        if (k == 1)
                return strdup(names[next_byte(in) % ELEMENTSOF(names)]) ?: (abort(), NULL);
        return input_string(in, 200);
}

static const char *input_path(Daemon *d, Input *in, char **owned) {
        uint8_t k = next_byte(in);

        if (k < 240 && d->n_paths > 0)
                return d->paths[k % d->n_paths];
        *owned = input_string(in, 80);
        return sd_bus_object_path_is_valid(*owned) ? *owned : "/org/virtbus1/fuzz";
}

/* Length of the single complete type at the start of sig. */
static size_t type_length(const char *sig) {
        size_t n = 1;
        int depth = 0;

        if (sig[0] == 'a')
                return 1 + type_length(sig + 1);
        if (sig[0] != '(' && sig[0] != '{')
                return 1;
        for (depth = 1; sig[n] && depth > 0; n++)
                if (sig[n] == '(' || sig[n] == '{')
                        depth++;
                else if (sig[n] == ')' || sig[n] == '}')
                        depth--;
        return n;
}

static int append_type(Daemon *d, sd_bus_message *m, const char *sig, size_t len, Input *in, unsigned depth);

static int append_basic(Daemon *d, sd_bus_message *m, char t, Input *in) {
        _cleanup_free_ char *s = NULL;
        uint64_t v;

        switch (t) {
        case 's':
                s = input_text(in);
                return sd_bus_message_append_basic(m, 's', s);
        case 'o': {
                _cleanup_free_ char *owned = NULL;
                return sd_bus_message_append_basic(m, 'o', input_path(d, in, &owned));
        }
        case 'g':
                return sd_bus_message_append_basic(m, 'g', (const char *[]) { "", "s", "t", "as", "a{sv}" }[next_byte(in) % 5]);
        case 'h':
                return sd_bus_message_append_basic(m, 'h', &d->null_fd);
        case 'b': {
                int b = next_byte(in) & 1;
                return sd_bus_message_append_basic(m, 'b', &b);
        }
        case 'd': {
                double x = (double) (int64_t) next_u64(in) / 1024.0;
                return sd_bus_message_append_basic(m, 'd', &x);
        }
        default:
                /* Integers; flags among them: 0, a single bit, or anything. */
                switch (next_byte(in) % 4) {
                case 0:
                        v = 0;
                        break;
                case 1:
                        v = UINT64_C(1) << (next_byte(in) % 64);
                        break;
                case 2:
                        v = next_byte(in);
                        break;
                default:
                        v = next_u64(in);
                }
                switch (t) {
                case 'y': {
                        uint8_t x = (uint8_t) v;
                        return sd_bus_message_append_basic(m, t, &x);
                }
                case 'n':
                case 'q': {
                        uint16_t x = (uint16_t) v;
                        return sd_bus_message_append_basic(m, t, &x);
                }
                case 'i':
                case 'u': {
                        uint32_t x = (uint32_t) v;
                        return sd_bus_message_append_basic(m, t, &x);
                }
                default:
                        return sd_bus_message_append_basic(m, t, &v);
                }
        }
}

static int append_type(Daemon *d, sd_bus_message *m, const char *sig, size_t len, Input *in, unsigned depth) {
        _cleanup_free_ char *contents = NULL;
        int r;

        if (depth > 8)
                return -E2BIG;
        if (sig[0] == 'a') {
                unsigned n = next_byte(in) % 4;

                contents = strndup(sig + 1, len - 1);
                if (!contents)
                        abort();
                r = sd_bus_message_open_container(m, 'a', contents);
                for (unsigned i = 0; r >= 0 && i < n; i++)
                        r = append_type(d, m, contents, len - 1, in, depth + 1);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        if (sig[0] == '(' || sig[0] == '{') {
                contents = strndup(sig + 1, len - 2);
                if (!contents)
                        abort();
                r = sd_bus_message_open_container(m, sig[0] == '(' ? 'r' : 'e', contents);
                for (const char *p = contents; r >= 0 && *p; p += type_length(p))
                        r = append_type(d, m, p, type_length(p), in, depth + 1);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        if (sig[0] == 'v') {
                static const char * const inner[] = { "s", "b", "u", "t", "as", "i", "x", "a{sv}" };
                const char *t = inner[next_byte(in) % ELEMENTSOF(inner)];

                r = sd_bus_message_open_container(m, 'v', t);
                if (r >= 0)
                        r = append_type(d, m, t, strlen(t), in, depth + 1);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        return append_basic(d, m, sig[0], in);
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        *(bool *) userdata = true;
        return 0;
}

/* Sends one call and runs the loop until its reply (or error) comes; a call never answered aborts. */
static void call(Daemon *d, Input *in) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *owned_path = NULL, *owned_iface = NULL, *owned_member = NULL, *owned_sig = NULL;
        const char *path = input_path(d, in, &owned_path), *iface, *member, *sig;
        uint8_t k = next_byte(in);
        bool answered = false;
        uint64_t deadline;
        struct timespec ts;
        int r;

        if (k < 248 && d->n_methods > 0) {
                const Method *me = &d->methods[(k << 8 | next_byte(in)) % d->n_methods];
                iface = me->interface;
                member = me->member;
                sig = me->signature;
        } else {
                owned_iface = input_string(in, 40);
                owned_member = input_string(in, 40);
                owned_sig = input_string(in, 8);
                for (char *c = owned_sig; *c; c++) /* basic types only: always a valid signature */
                        *c = "sbuthoiyxgdhqn"[(uint8_t) *c % 14];
                iface = sd_bus_interface_name_is_valid(owned_iface) ? owned_iface : "org.virtbus1.Fuzz";
                member = sd_bus_member_name_is_valid(owned_member) ? owned_member : "Fuzz";
                sig = owned_sig;
        }
        /* Now and then the arguments of another member: a wrong signature. */
        if (next_byte(in) == 0xff && d->n_methods > 0)
                sig = d->methods[next_byte(in) % d->n_methods].signature;

        r = sd_bus_message_new_method_call(d->client, &m, NULL, path, iface, member);
        if (r < 0)
                return;
        for (const char *p = sig; r >= 0 && *p; p += type_length(p))
                r = append_type(d, m, p, type_length(p), in, 0);
        if (r < 0)
                return; /* the client library refused the arguments: nothing to send */
        (void) sd_bus_message_set_allow_interactive_authorization(m, next_byte(in) & 1);
        r = sd_bus_call_async(d->client, &slot, m, on_reply, &answered, REPLY_TIMEOUT_USEC * 2);
        if (r < 0)
                return;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        deadline = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000 + REPLY_TIMEOUT_USEC;
        while (!answered) {
                uint64_t now;

                if (sd_event_run(d->event, 100 * 1000) < 0)
                        abort();
                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
                if (!answered && now > deadline) {
                        fprintf(stderr, "fuzz-dbus: no answer to %s.%s on %s within %llu s\n", iface, member, path,
                                (unsigned long long) (REPLY_TIMEOUT_USEC / 1000000));
                        abort();
                }
        }
}

static void add_path(Daemon *d, const char *path) {
        char **n = realloc(d->paths, (d->n_paths + 1) * sizeof(char *));
        if (!n || !(n[d->n_paths] = strdup(path)))
                abort();
        d->paths = n;
        d->n_paths++;
}

static void add_method(Daemon *d, const char *iface, const char *member, const char *sig) {
        Method *n;

        for (size_t i = 0; i < d->n_methods; i++)
                if (streq(d->methods[i].interface, iface) && streq(d->methods[i].member, member))
                        return;
        n = realloc(d->methods, (d->n_methods + 1) * sizeof(Method));
        if (!n)
                abort();
        d->methods = n;
        n[d->n_methods++] = (Method) { strdup(iface), strdup(member), strdup(sig) };
}

static int capture_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        *(sd_bus_message **) userdata = sd_bus_message_ref(m);
        return 0;
}

static sd_bus_message *introspect(Daemon *d, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_slot *slot = NULL;

        if (sd_bus_message_new_method_call(d->client, &m, NULL, path, "org.freedesktop.DBus.Introspectable",
                                           "Introspect") < 0 ||
            sd_bus_call_async(d->client, &slot, m, capture_reply, &reply, 0) < 0)
                abort();
        while (!reply)
                if (sd_event_run(d->event, UINT64_MAX) < 0)
                        abort();
        sd_bus_slot_unref(slot);
        return reply;
}

/* Walks the object tree from path: every object and every method of every interface. */
static void walk(Daemon *d, const char *path, unsigned depth) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = introspect(d, path);
        const char *xml = NULL;
        xmlDoc *doc;

        if (depth > 6 || sd_bus_message_is_method_error(reply, NULL) || sd_bus_message_read(reply, "s", &xml) < 0)
                return;
        doc = xmlReadMemory(xml, (int) strlen(xml), NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS);
        if (!doc)
                return;
        add_path(d, path);
        for (xmlNode *n = xmlDocGetRootElement(doc)->children; n; n = n->next) {
                xmlChar *name = xmlGetProp(n, (const xmlChar *) "name");

                if (!name)
                        continue;
                if (xmlStrEqual(n->name, (const xmlChar *) "node")) {
                        _cleanup_free_ char *child = NULL;
                        if (asprintf(&child, "%s/%s", streq(path, "/") ? "" : path, (const char *) name) < 0)
                                abort();
                        walk(d, child, depth + 1);
                } else if (xmlStrEqual(n->name, (const xmlChar *) "interface"))
                        for (xmlNode *me = n->children; me; me = me->next) {
                                xmlChar *member = xmlGetProp(me, (const xmlChar *) "name");
                                char sig[256] = "";

                                if (!member || !xmlStrEqual(me->name, (const xmlChar *) "method")) {
                                        xmlFree(member);
                                        continue;
                                }
                                for (xmlNode *a = me->children; a; a = a->next) {
                                        xmlChar *type = xmlGetProp(a, (const xmlChar *) "type");
                                        xmlChar *dir = xmlGetProp(a, (const xmlChar *) "direction");
                                        if (type && xmlStrEqual(a->name, (const xmlChar *) "arg") &&
                                            (!dir || xmlStrEqual(dir, (const xmlChar *) "in")) &&
                                            strlen(sig) + xmlStrlen(type) < sizeof sig)
                                                strcat(sig, (const char *) type);
                                        xmlFree(type);
                                        xmlFree(dir);
                                }
                                add_method(d, (const char *) name, (const char *) member, sig);
                                xmlFree(member);
                        }
                xmlFree(name);
        }
        xmlFreeDoc(doc);
}

static void call_simple(Daemon *d, const char *member, const char *sig, const char *arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_slot *slot = NULL;

        if (sd_bus_message_new_method_call(d->client, &m, NULL, VB_MANAGER_PATH, VB_MANAGER_INTERFACE, member) < 0 ||
            sd_bus_message_append(m, sig, arg, UINT64_C(0)) < 0 ||
            sd_bus_call_async(d->client, &slot, m, capture_reply, &reply, 0) < 0)
                abort();
        while (!reply)
                if (sd_event_run(d->event, UINT64_MAX) < 0)
                        abort();
        sd_bus_slot_unref(slot);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

/* The daemon's directory goes when the fuzzer exits (libFuzzer ends a timed run with exit()): runs of
 * scripts/fuzz left one in /tmp each. */
static void daemon_dir_remove(void) {
        if (daemon_instance.dir)
                (void) nftw(daemon_instance.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void daemon_start(Daemon *d) {
        _cleanup_free_ char *config = NULL, *state = NULL, *runtime = NULL;
        char tmpl[] = "/tmp/virtbus-fuzz-dbus.XXXXXX";
        VbError e = VB_ERROR_NULL;
        ManagerConfig cfg;
        sd_id128_t id;
        int fds[2];

        if (!mkdtemp(tmpl))
                abort();
        d->dir = strdup(tmpl);
        if (!d->dir || atexit(daemon_dir_remove) != 0)
                abort();
        if (asprintf(&config, "%s/config", tmpl) < 0 || asprintf(&state, "%s/state", tmpl) < 0 ||
            asprintf(&runtime, "%s/run", tmpl) < 0)
                abort();
        d->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (d->null_fd < 0 || sd_event_new(&d->event) < 0)
                abort();
        cfg = (ManagerConfig) { .mode = MANAGER_USER, .driver = "test", .config_dir = config, .state_dir = state,
                                .runtime_dir = runtime };
        if (manager_new(&cfg, d->event, &d->manager, &e) < 0 || manager_load(d->manager, &e) < 0) {
                fprintf(stderr, "fuzz-dbus: the daemon does not start: %s\n", e.message ?: "?");
                abort();
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0 ||
            sd_bus_new(&d->server_bus) < 0 || sd_bus_set_fd(d->server_bus, fds[0], fds[0]) < 0 ||
            sd_id128_randomize(&id) < 0 || sd_bus_set_server(d->server_bus, true, id) < 0 ||
            sd_bus_negotiate_creds(d->server_bus, true, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID) < 0 ||
            sd_bus_start(d->server_bus) < 0 || bus_server_new(d->server_bus, d->manager, &d->server) < 0 ||
            sd_bus_attach_event(d->server_bus, d->event, SD_EVENT_PRIORITY_NORMAL) < 0 ||
            sd_bus_new(&d->client) < 0 || sd_bus_set_fd(d->client, fds[1], fds[1]) < 0 ||
            sd_bus_start(d->client) < 0 || sd_bus_attach_event(d->client, d->event, SD_EVENT_PRIORITY_NORMAL) < 0)
                abort();

        /* Something of each kind to call on: a domain, a network, a pool with a volume. */
        call_simple(d, "DefineDomain", "st", documents[1]);
        call_simple(d, "DefineNetwork", "st", documents[5]);
        walk(d, "/", 0);
        log_debug("fuzz-dbus: %zu objects, %zu methods.", d->n_paths, d->n_methods);
}

/* Undefines what the fuzzer defined beyond DOMAINS_MAX domains. */
static void trim(Daemon *d) {
        Manager *m = d->manager;

        while (m->n_domains > DOMAINS_MAX) {
                Domain *dom = m->domains[m->n_domains - 1];
                VbError e = VB_ERROR_NULL;
                char uuid[64];

                snprintf(uuid, sizeof uuid, "%s", dom->uuid);
                (void) manager_domain_destroy(m, dom, &e); /* frees a transient one */
                vb_error_free(&e);
                dom = manager_domain_by_uuid(m, uuid);
                if (dom && manager_domain_undefine(m, dom, &e) < 0) {
                        vb_error_free(&e);
                        break;
                }
        }
        /* Let the signals about it go out. */
        while (sd_event_run(d->event, 0) > 0)
                ;
}

void fuzz_dbus_start(void) {
        if (!daemon_instance.event)
                daemon_start(&daemon_instance);
}

int fuzz_dbus(const uint8_t *data, size_t size) {
        Daemon *d = &daemon_instance;
        Input in = { data, size };

        fuzz_dbus_start();
        for (unsigned i = 0; i < CALLS_MAX && in.left > 0; i++)
                call(d, &in);
        trim(d);
        return 1;
}
