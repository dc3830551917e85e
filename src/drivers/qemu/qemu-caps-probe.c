/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Asking a QEMU binary what it can do: one process under TCG (and one under KVM, started at the same
 * time) with -S -nodefaults -machine none and a QMP socket we listen on; the answers go into one JSON
 * document (see qemu-caps.h). Runs in a worker thread: everything here blocks, bounded. */
#include <errno.h>
#include <pthread.h>
#include <sys/sysmacros.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/qemu/qemu-caps.h"
#include "drivers/qemu/qemu-monitor.h"
#include "host/process.h"
#include "util/log.h"
#include "util/socket-util.h"

/* Each step of a probe (QEMU's greeting, every command) may take this long. The probe runs in its own
 * thread and only once per binary, so the bound is generous: QEMU starting on a loaded host took more than
 * 10 s to greet (test-capabilities, a sanitizer run at load 30; at load 46 a bare QEMU took 7-9 s to its
 * first QMP answer with 0.1 s of CPU, waiting to be scheduled at each of its ~1,100 system calls).
 * $VIRTBUS_QEMU_PROBE_TIMEOUT_MS sets it (tests of failed probes). */
#define PROBE_TIMEOUT_USEC (30 * 1000000ULL)

uint64_t qemu_caps_probe_timeout(void) {
        return env_msec_as_usec("VIRTBUS_QEMU_PROBE_TIMEOUT_MS", PROBE_TIMEOUT_USEC);
}

int qemu_caps_key_of(const char *path, QemuCapsKey *ret) {
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        *ret = (QemuCapsKey) {
                .dev = st.st_dev,
                .ino = st.st_ino,
                .size = st.st_size,
                .mtime_nsec = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
        };
        return 0;
}

bool qemu_caps_key_equal(const QemuCapsKey *a, const QemuCapsKey *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_nsec == b->mtime_nsec;
}

typedef struct ProbeProc {
        const char *accel;
        const char *label; /* names its socket */
        char *sock;
        pid_t pid;
        int pidfd;
        QemuMonitor *mon;
} ProbeProc;

static int proc_start(ProbeProc *p, const char *emulator, const char *tmp_dir, const HostConfinement *confinement,
                      unsigned n) {
        char chardev[64];
        int fd, r;

        if (asprintf(&p->sock, "%s/probe-%d-%u-%s.sock", tmp_dir, (int) getpid(), n, p->label) < 0)
                return -ENOMEM;
        r = socket_listen_unix(p->sock, 1, &fd);
        if (r < 0)
                return r;
        snprintf(chardev, sizeof chardev, "socket,id=qmp,fd=%d,server=on,wait=off", fd);
        const char *argv[] = {
                emulator, "-S", "-no-user-config", "-nodefaults", "-display", "none", "-machine", "none",
                "-accel", p->accel, "-chardev", chardev, "-mon", "chardev=qmp,mode=control", NULL,
        };
        if (confinement) {
                /* As every QEMU: its own user, nothing but KVM in its /dev. */
                HostConfinement c = *confinement;
                const char *hide[32];

                c.die_with_parent = true; /* a probe never outlives the service */
                HostDevNode kvm = { .name = "kvm", .major = 10, .minor = 232, .owned = true };
                struct stat st;
                if (streq(p->accel, "kvm") && stat("/dev/kvm", &st) >= 0 && S_ISCHR(st.st_mode)) {
                        kvm.major = major(st.st_rdev);
                        kvm.minor = minor(st.st_rdev);
                        c.dev_nodes = &kvm;
                        c.n_dev_nodes = 1;
                }
                host_confinement_keep_program(&c, emulator, hide, ELEMENTSOF(hide));
                r = host_process_spawn_confined(argv, -1, &fd, 1, &c, &p->pid);
        } else
                r = host_process_spawn(argv, -1, &fd, 1, &p->pid);
        close(fd);
        if (r < 0)
                return r;
        p->pidfd = host_process_open_fd(p->pid);
        return 0;
}

static int proc_open(ProbeProc *p, sd_event *event, char **ret_error) {
        static const QemuMonitorCallbacks cb = {};
        return qemu_monitor_open(event, p->sock, p->pidfd, qemu_caps_probe_timeout(), &cb, NULL, &p->mon, ret_error);
}

static void proc_done(ProbeProc *p) {
        p->mon = qemu_monitor_free(p->mon);
        if (p->pid > 0)
                (void) host_process_terminate(p->pid, p->pidfd, 200 * 1000);
        if (p->pidfd >= 0)
                close(p->pidfd);
        if (p->sock) {
                (void) unlink(p->sock);
                free(p->sock);
        }
        *p = (ProbeProc) { .pidfd = -1 };
}

/* Runs command (with args, taken; NULL: none) and adds its answer to doc as key, or returns it in ret. */
static int ask_args(ProbeProc *p, struct json_object *doc, const char *key, const char *command,
                    struct json_object *args, struct json_object **ret, char **ret_error) {
        struct json_object *v = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = qemu_monitor_call_sync(p->mon, command, args, qemu_caps_probe_timeout(), &v, &err); /* takes args */
        if (r < 0) {
                if (asprintf(ret_error, "QEMU (%s) did not answer '%s': %s", p->accel, command,
                             err ?: strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (ret)
                *ret = v;
        else if (key)
                json_object_object_add(doc, key, v);
        else
                json_object_put(v);
        return 0;
}

static int ask(ProbeProc *p, struct json_object *doc, const char *key, const char *command, struct json_object **ret,
               char **ret_error) {
        return ask_args(p, doc, key, command, NULL, ret, ret_error);
}

/* The arguments of query-cpu-model-expansion (static) for model name with props (taken; NULL: none). */
static struct json_object *expansion_args(const char *name, struct json_object *props) {
        struct json_object *args = json_object_new_object(), *model = json_object_new_object();

        if (!args || !model) {
                json_object_put(args);
                json_object_put(model);
                json_object_put(props);
                return NULL;
        }
        json_object_object_add(model, "name", json_object_new_string(name));
        if (props)
                json_object_object_add(model, "props", props);
        json_object_object_add(args, "type", json_object_new_string("static"));
        json_object_object_add(args, "model", model);
        return args;
}

/* A CPU model as QEMU expands it statically ({"model": {"name": "base", "props": {...}}}), kept as
 * {"vendor": ..., "model-id": ..., "features": [the features it has]}; NULL if the answer has no props. */
static struct json_object *compact_expansion(struct json_object *v) {
        struct json_object *props = qemu_json_get(qemu_json_get(v, "model"), "props"), *out, *features;

        if (!json_object_is_type(props, json_type_object))
                return NULL;
        out = json_object_new_object();
        features = json_object_new_array();
        if (!out || !features) {
                json_object_put(out);
                json_object_put(features);
                return NULL;
        }
        json_object_object_foreach(props, k, val) {
                if (json_object_is_type(val, json_type_boolean) && json_object_get_boolean(val))
                        json_object_array_add(features, json_object_new_string(k));
                else if (json_object_is_type(val, json_type_string) && (streq(k, "vendor") || streq(k, "model-id")))
                        json_object_object_add(out, k, json_object_get(val));
        }
        json_object_object_add(out, "features", features);
        return out;
}

/* The static expansion of model name (with props, taken) as compact_expansion keeps it; waits for it. */
static int expand_cpu(ProbeProc *p, const char *name, struct json_object *props, struct json_object **ret,
                      char **ret_error) {
        struct json_object *args = expansion_args(name, props), *v = NULL;
        int r;

        if (!args)
                return -ENOMEM;
        r = ask_args(p, NULL, NULL, "query-cpu-model-expansion", args, &v, ret_error);
        if (r < 0)
                return r;
        *ret = compact_expansion(v);
        json_object_put(v);
        if (!*ret) {
                if (asprintf(ret_error, "QEMU (%s) expanded CPU model '%s' into no properties", p->accel, name) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }
        return 0;
}

/* One model's expansion, sent without waiting (all of them are pipelined: one round trip, not one each). */
typedef struct ModelExpansion {
        const char *name; /* points into the probe document */
        struct json_object *models;
        bool failed;
} ModelExpansion;

static void on_model_expanded(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        ModelExpansion *x = userdata;
        struct json_object *m = error ? NULL : compact_expansion(ret);

        if (!m) {
                x->failed = true;
                return;
        }
        json_object_object_add(x->models, x->name, m);
}

/* What the CPU models are made of (x86 only: other targets have no static expansion of their models),
 * and the emulator's own richest CPU ("max") under TCG. */
static int ask_cpu_models(ProbeProc *p, struct json_object *doc, char **ret_error) {
        struct json_object *cpus = qemu_json_get(doc, "cpus-tcg"), *models, *m = NULL;
        const char *target = qemu_json_string(qemu_json_get(doc, "target"), "arch");
        size_t n = json_object_is_type(cpus, json_type_array) ? json_object_array_length(cpus) : 0;
        _cleanup_free_ ModelExpansion *x = NULL;
        int r;

        if (!streq_ptr(target, "x86_64") && !streq_ptr(target, "i386"))
                return 0;
        models = json_object_new_object();
        x = new0(ModelExpansion, n + 1);
        if (!models || !x) {
                json_object_put(models);
                return -ENOMEM;
        }
        json_object_object_add(doc, "cpu-models", models);
        for (size_t i = 0; i < n; i++) {
                const char *name = qemu_json_string(json_object_array_get_idx(cpus, i), "name");
                struct json_object *args;

                if (!name || !qemu_caps_cpu_listed(cpus, name))
                        continue;
                x[i] = (ModelExpansion) { .name = name, .models = models };
                args = expansion_args(name, NULL);
                if (!args)
                        return -ENOMEM;
                r = qemu_monitor_call(p->mon, "query-cpu-model-expansion", args, on_model_expanded, &x[i]);
                if (r < 0)
                        return r;
        }
        /* Answered after all of the above (QMP answers in order), whose callbacks have run by then. */
        r = expand_cpu(p, "max", NULL, &m, ret_error);
        if (r < 0)
                return r;
        json_object_object_add(doc, "host-cpu-tcg", m);
        for (size_t i = 0; i < n; i++)
                if (x[i].failed) {
                        if (asprintf(ret_error, "QEMU (%s) did not expand CPU model '%s'", p->accel, x[i].name) < 0)
                                *ret_error = NULL;
                        return -EBADMSG;
                }
        /* The Hyper-V enlightenments are properties of the CPU (hv-*). */
        {
                struct json_object *args = json_object_new_object(), *props = NULL, *hv;
                char type[64];

                if (!args)
                        return -ENOMEM;
                snprintf(type, sizeof type, "max-%s-cpu", target);
                json_object_object_add(args, "typename", json_object_new_string(type));
                r = ask_args(p, NULL, NULL, "qom-list-properties", args, &props, ret_error);
                if (r < 0)
                        return r;
                hv = json_object_new_array();
                for (size_t i = 0; hv && i < json_object_array_length(props); i++) {
                        const char *pn = qemu_json_string(json_object_array_get_idx(props, i), "name");
                        if (pn && strncmp(pn, "hv-", 3) == 0)
                                json_object_array_add(hv, json_object_new_string(pn));
                }
                json_object_put(props);
                if (!hv)
                        return -ENOMEM;
                json_object_object_add(doc, "cpu-hv-properties", hv);
        }
        return 0;
}

/* Only the names of a list of {"name": ...}. */
static struct json_object *names_of(struct json_object *list) {
        struct json_object *a = json_object_new_array();

        for (size_t i = 0; a && json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
                const char *n = qemu_json_string(json_object_array_get_idx(list, i), "name");
                if (n)
                        json_object_array_add(a, json_object_new_string(n));
        }
        return a;
}

static struct json_object *schema_find(struct json_object *schema, const char *name) {
        for (size_t i = 0; i < json_object_array_length(schema); i++) {
                struct json_object *e = json_object_array_get_idx(schema, i);
                if (streq_ptr(qemu_json_string(e, "name"), name))
                        return e;
        }
        return NULL;
}

/* The values of the enum behind query-display-options' "type": what -display accepts in this build. */
static struct json_object *display_types(struct json_object *schema) {
        struct json_object *cmd, *ret_type, *members, *e, *values, *out = json_object_new_array();

        if (!out || !json_object_is_type(schema, json_type_array))
                return out;
        cmd = schema_find(schema, "query-display-options");
        ret_type = schema_find(schema, qemu_json_string(cmd, "ret-type"));
        members = qemu_json_get(ret_type, "members");
        for (size_t i = 0; members && i < json_object_array_length(members); i++) {
                struct json_object *m = json_object_array_get_idx(members, i);
                if (!streq_ptr(qemu_json_string(m, "name"), "type"))
                        continue;
                e = schema_find(schema, qemu_json_string(m, "type"));
                values = qemu_json_get(e, "values");
                for (size_t j = 0; values && j < json_object_array_length(values); j++)
                        json_object_array_add(out, json_object_get(json_object_array_get_idx(values, j)));
        }
        return out;
}

static int ask_main(ProbeProc *p, struct json_object *doc, char **ret_error) {
        struct json_object *v = NULL;
        int r;

        if ((r = ask(p, doc, "version", "query-version", NULL, ret_error)) < 0 ||
            (r = ask(p, doc, "target", "query-target", NULL, ret_error)) < 0 ||
            (r = ask(p, doc, "kvm", "query-kvm", NULL, ret_error)) < 0 ||
            (r = ask(p, doc, "machines", "query-machines", NULL, ret_error)) < 0 ||
            (r = ask(p, doc, "cpus-tcg", "query-cpu-definitions", NULL, ret_error)) < 0)
                return r;
        if ((r = ask(p, doc, NULL, "qom-list-types", &v, ret_error)) < 0)
                return r;
        json_object_object_add(doc, "types", names_of(v));
        json_object_put(v);
        if ((r = ask(p, doc, NULL, "query-commands", &v, ret_error)) < 0)
                return r;
        json_object_object_add(doc, "commands", names_of(v));
        json_object_put(v);
        if ((r = ask(p, doc, NULL, "query-qmp-schema", &v, ret_error)) < 0)
                return r;
        json_object_object_add(doc, "displays", display_types(v));
        json_object_put(v);
        return 0;
}

static int ask_kvm(ProbeProc *p, struct json_object *doc, const char *target, char **ret_error) {
        struct json_object *host = NULL, *props;
        int r = ask(p, doc, "kvm", "query-kvm", NULL, ret_error);

        if (r >= 0)
                r = ask(p, doc, "cpus-kvm", "query-cpu-definitions", NULL, ret_error);
        if (r < 0 || (!streq_ptr(target, "x86_64") && !streq_ptr(target, "i386")))
                return r;
        /* The host's CPU as KVM offers it, with what pins a guest to this host (invtsc) too, as host-model
         * means. */
        props = json_object_new_object();
        if (!props)
                return -ENOMEM;
        json_object_object_add(props, "migratable", json_object_new_boolean(false));
        r = expand_cpu(p, "host", props, &host, ret_error);
        if (r >= 0)
                json_object_object_add(doc, "host-cpu-kvm", host);
        return r;
}

/* The CPU models' expansions are the largest part of the probe: a third QEMU (TCG) answers them, asked from
 * a thread of its own while the first answers the rest. */
typedef struct ModelsJob {
        ProbeProc *proc;
        struct json_object *doc; /* its own: target, cpus-tcg, and what ask_cpu_models adds */
        char *error;
        int r;
} ModelsJob;

static void *models_thread(void *userdata) {
        ModelsJob *j = userdata;
        sd_event *event = NULL;

        j->r = sd_event_new(&event);
        if (j->r >= 0)
                j->r = proc_open(j->proc, event, &j->error);
        if (j->r >= 0)
                j->r = ask(j->proc, j->doc, "target", "query-target", NULL, &j->error);
        if (j->r >= 0)
                j->r = ask(j->proc, j->doc, "cpus-tcg", "query-cpu-definitions", NULL, &j->error);
        if (j->r >= 0)
                j->r = ask_cpu_models(j->proc, j->doc, &j->error);
        /* The monitor belongs to this thread's loop. */
        j->proc->mon = qemu_monitor_free(j->proc->mon);
        sd_event_unref(event);
        return NULL;
}

static void add_key(struct json_object *doc, const char *emulator, const QemuCapsKey *key, bool kvm) {
        json_object_object_add(doc, "format", json_object_new_int(QEMU_CAPS_PROBE_FORMAT));
        json_object_object_add(doc, "kvm-probe", json_object_new_boolean(kvm));
        json_object_object_add(doc, "emulator", json_object_new_string(emulator));
        json_object_object_add(doc, "dev", json_object_new_uint64((uint64_t) key->dev));
        json_object_object_add(doc, "ino", json_object_new_uint64((uint64_t) key->ino));
        json_object_object_add(doc, "size", json_object_new_int64((int64_t) key->size));
        json_object_object_add(doc, "mtime", json_object_new_int64(key->mtime_nsec));
}

int qemu_caps_probe(const char *emulator, const QemuCapsKey *key, const char *tmp_dir, bool kvm,
                    const HostConfinement *confinement,
                    struct json_object **ret, char **ret_error) {
        static unsigned counter;
        ProbeProc procs[3] = { { .accel = "tcg", .label = "tcg", .pidfd = -1 },
                               { .accel = "tcg", .label = "cpus", .pidfd = -1 },
                               { .accel = "kvm", .label = "kvm", .pidfd = -1 } };
        size_t n = kvm ? 3 : 2;
        unsigned serial = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        struct json_object *doc = json_object_new_object(), *kvm_doc = NULL;
        ModelsJob job = { .proc = &procs[1], .doc = json_object_new_object() };
        pthread_t models;
        bool models_running = false;
        sd_event *event = NULL;
        int r = 0;

        *ret_error = NULL;
        if (!doc || !job.doc) {
                json_object_put(doc);
                json_object_put(job.doc);
                return -ENOMEM;
        }
        r = sd_event_new(&event);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = proc_start(&procs[i], emulator, tmp_dir, confinement, serial);
                if (r < 0 && asprintf(ret_error, "Failed to run '%s': %s", emulator, strerror(-r)) < 0)
                        *ret_error = NULL;
        }
        if (r >= 0) {
                r = -pthread_create(&models, NULL, models_thread, &job);
                models_running = r >= 0;
        }
        if (r >= 0)
                r = proc_open(&procs[0], event, ret_error);
        if (r >= 0)
                r = ask_main(&procs[0], doc, ret_error);
        if (r >= 0 && kvm) {
                /* KVM may fail where TCG works (not usable after all): then the TCG answers stand. */
                _cleanup_free_ char *kvm_error = NULL;

                kvm_doc = json_object_new_object();
                if (kvm_doc && proc_open(&procs[2], event, &kvm_error) >= 0 &&
                    ask_kvm(&procs[2], kvm_doc, qemu_json_string(qemu_json_get(doc, "target"), "arch"), &kvm_error) >= 0) {
                        json_object_object_add(doc, "kvm", json_object_get(qemu_json_get(kvm_doc, "kvm")));
                        json_object_object_add(doc, "cpus-kvm", json_object_get(qemu_json_get(kvm_doc, "cpus-kvm")));
                        if (qemu_json_get(kvm_doc, "host-cpu-kvm"))
                                json_object_object_add(doc, "host-cpu-kvm",
                                                       json_object_get(qemu_json_get(kvm_doc, "host-cpu-kvm")));
                } else
                        log_debug("Probing '%s' under KVM failed, ignoring: %s", emulator, strempty(kvm_error));
                json_object_put(kvm_doc);
        }
        if (models_running) {
                (void) pthread_join(models, NULL);
                if (r >= 0 && job.r < 0) {
                        r = job.r;
                        *ret_error = TAKE_PTR(job.error);
                }
                if (r >= 0) {
                        static const char * const keys[] = { "cpu-models", "host-cpu-tcg", "cpu-hv-properties" };
                        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                                if (qemu_json_get(job.doc, keys[i]))
                                        json_object_object_add(doc, keys[i], json_object_get(qemu_json_get(job.doc, keys[i])));
                }
        }
        free(job.error);
        json_object_put(job.doc);
        for (size_t i = 0; i < n; i++)
                proc_done(&procs[i]);
        sd_event_unref(event);
        if (r < 0) {
                json_object_put(doc);
                return r;
        }
        add_key(doc, emulator, key, kvm);
        *ret = doc;
        return 0;
}
