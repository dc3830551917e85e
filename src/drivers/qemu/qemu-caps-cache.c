/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QemuCaps per emulator path: in memory, on disk (<state>/qemu/caps/<hash>.json, the probe document with
 * the binary's key in it) and, when neither is current, probed, in a thread so that the event loop never
 * waits for QEMU nor spends long on the document. The thread reads the disk file (or probes and writes
 * it), builds the QemuCaps, and the domain capabilities of the machines most definitions name (the
 * default one, 'pc', 'q35'; others are built on first use); it hands them back through an eventfd, and
 * everything else happens on the event loop. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "drivers/qemu/qemu-caps.h"
#include "drivers/qemu/qemu-monitor.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/loop-watch.h"

typedef struct Waiter {
        QemuCapsReady ready;
        void *userdata;
        struct Waiter *next;
} Waiter;

typedef struct Entry Entry;

typedef struct Probe {
        Entry *entry;
        QemuCapsKey key;
        pthread_t thread;
        int efd;
        sd_event_source *source;
        /* Set by the thread. */
        char *emulator, *tmp_dir, *cache_path;
        const HostConfinement *confinement;
        bool kvm;
        QemuHostFacts host;
        QemuCaps *caps;  /* the result */
        bool from_disk;  /* the disk file was current: nothing was probed */
        char *error;
        int r;
        Waiter *waiters;
} Probe;

struct Entry {
        QemuCapsCache *cache;
        char *emulator; /* the map's key */
        QemuCapsKey key;
        QemuCaps *caps;  /* NULL when the last probe failed */
        char *error;
        int r;
        uint64_t failed_usec; /* when the last probe failed (CLOCK_MONOTONIC) */
        Probe *probe;    /* running */
};

struct QemuCapsCache {
        sd_event *event;
        char *cache_dir, *tmp_dir;
        const HostConfinement *confinement;
        bool kvm;
        QemuHostFacts host; /* for the domain capabilities built ahead */
        Hashmap *entries;
};

static char *cache_path(QemuCapsCache *c, const char *emulator) {
        uint64_t h = UINT64_C(1469598103934665603);
        char *p;

        for (const char *s = emulator; *s; s++)
                h = (h ^ (uint8_t) *s) * UINT64_C(1099511628211);
        if (asprintf(&p, "%s/%016llx.json", c->cache_dir, (unsigned long long) h) < 0)
                return NULL;
        return p;
}

int qemu_caps_cache_new(sd_event *event, const char *cache_dir, const char *tmp_dir, bool kvm,
                        const HostConfinement *confinement, QemuCapsCache **ret) {
        QemuCapsCache *c = new0(QemuCapsCache, 1);

        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->kvm = kvm;
        c->cache_dir = strdup(cache_dir);
        c->tmp_dir = strdup(tmp_dir);
        c->confinement = confinement;
        c->entries = hashmap_new();
        if (!c->cache_dir || !c->tmp_dir || !c->entries) {
                qemu_caps_cache_free(c);
                return -ENOMEM;
        }
        (void) mkdir_p(cache_dir, 0700);
        (void) mkdir_p(tmp_dir, 0700);
        *ret = c;
        return 0;
}

static void probe_free(Probe *p) {
        while (p->waiters) {
                Waiter *w = p->waiters;
                p->waiters = w->next;
                free(w);
        }
        sd_event_source_disable_unref(p->source);
        if (p->efd >= 0)
                close(p->efd);
        qemu_caps_unref(p->caps);
        free(p->error);
        free(p->emulator);
        free(p->tmp_dir);
        free(p->cache_path);
        free(p);
}

static void entry_free(Entry *e) {
        if (e->probe) {
                (void) pthread_join(e->probe->thread, NULL);
                probe_free(e->probe);
        }
        qemu_caps_unref(e->caps);
        free(e->error);
        free(e->emulator);
        free(e);
}

void qemu_caps_cache_set_host(QemuCapsCache *c, const QemuHostFacts *host) {
        c->host = *host;
}

QemuCapsCache *qemu_caps_cache_free(QemuCapsCache *c) {
        Entry *e;

        if (!c)
                return NULL;
        for (size_t i = 0; c->entries && hashmap_iterate(c->entries, &i, (void **) &e, NULL);)
                entry_free(e);
        hashmap_free(c->entries);
        sd_event_unref(c->event);
        free(c->cache_dir);
        free(c->tmp_dir);
        free(c);
        return NULL;
}

/* The disk cache, if it is for this very binary (any thread). */
static QemuCaps *load_disk(const char *path, const char *emulator, bool kvm, const QemuCapsKey *key) {
        _cleanup_free_ char *text = NULL, *err = NULL;
        struct json_object *doc;
        QemuCaps *caps = NULL;

        if (!path || read_full_file(path, 0, &text, NULL) < 0)
                return NULL;
        doc = json_tokener_parse(text);
        if (!doc)
                return NULL;
        {
                struct json_object *f = qemu_json_get(doc, "format");
                struct json_object *k = qemu_json_get(doc, "kvm-probe");
                if (!f || json_object_get_int(f) != QEMU_CAPS_PROBE_FORMAT || !streq_ptr(qemu_json_string(doc, "emulator"), emulator) ||
                    !k || json_object_get_boolean(k) != kvm) {
                        json_object_put(doc);
                        return NULL;
                }
        }
        if (qemu_caps_from_doc(doc, &caps, &err) < 0)
                return NULL;
        if (!qemu_caps_key_equal(&caps->key, key)) {
                log_debug("The cached capabilities of '%s' are for another version of the file.", emulator);
                return qemu_caps_unref(caps);
        }
        return caps;
}

/* The domain capabilities most definitions ask for, built while c is still the thread's own: the
 * default machine, 'pc' and 'q35', for 'qemu' and (when usable) 'kvm'. Others are built on first use. */
static void warm(QemuCaps *c, const QemuHostFacts *host) {
        const char *names[] = { NULL, "pc", "q35" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const QemuCapsMachine *m = names[i] ? qemu_caps_find_machine(c, names[i])
                                                    : qemu_caps_default_machine(c);

                for (int kvm = 0; m && kvm <= (host->kvm_usable && c->kvm_enabled); kvm++) {
                        DomainCaps *dc = NULL;

                        if (qemu_caps_domain_caps(c, host, kvm ? "kvm" : "qemu", m, &dc) >= 0)
                                domain_caps_unref(dc);
                }
        }
}

static void *probe_thread(void *userdata) {
        Probe *p = userdata;
        struct json_object *doc = NULL;
        uint64_t one = 1;

        p->caps = load_disk(p->cache_path, p->emulator, p->kvm, &p->key);
        p->from_disk = p->caps;
        if (!p->caps) {
                p->r = qemu_caps_probe(p->emulator, &p->key, p->tmp_dir, p->kvm, p->confinement, &doc, &p->error);
                if (p->r >= 0 && p->cache_path) {
                        const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                        int r = write_file_atomic(p->cache_path, text, strlen(text), 0600);
                        if (r < 0)
                                log_debug("Failed to write '%s', ignoring: %s", p->cache_path, strerror(-r));
                }
                if (p->r >= 0) {
                        free(p->error);
                        p->error = NULL;
                        p->r = qemu_caps_from_doc(doc, &p->caps, &p->error); /* takes doc */
                }
        }
        if (p->caps)
                warm(p->caps, &p->host);
        (void) !write(p->efd, &one, sizeof one);
        return NULL;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* A failed probe is answered for a while (the callers that waited for it, and those right after, get
 * its error), then forgotten: a failure may be the host's, not the binary's (QEMU that did not answer in
 * time on a loaded host), and must not leave the binary unusable until virtbusd restarts. */
static bool entry_failure_stale(const Entry *e) {
        return !e->caps && e->error && now_usec() >= e->failed_usec + qemu_caps_probe_timeout();
}

static void entry_set_error(Entry *e, int r, const char *error) {
        free(e->error);
        e->error = NULL;
        e->r = r;
        e->failed_usec = now_usec();
        if (asprintf(&e->error, "Failed to probe the emulator '%s': %s", e->emulator, error ?: strerror(-r)) < 0)
                e->error = NULL;
        e->caps = qemu_caps_unref(e->caps);
}

static void entry_set_caps(Entry *e, QemuCaps *caps) {
        qemu_caps_unref(e->caps);
        e->caps = caps;
        e->key = caps->key;
        e->r = 0;
        free(e->error);
        e->error = NULL;
}

/* The probe ended (its thread is done): takes its result and tells the waiters. */
static void probe_finish(Probe *p) {
        Entry *e = p->entry;
        Waiter *waiters = TAKE_PTR(p->waiters);

        (void) pthread_join(p->thread, NULL);
        e->probe = NULL;
        e->key = p->key;
        if (p->r >= 0 && p->caps) {
                QemuCaps *caps = TAKE_PTR(p->caps);

                entry_set_caps(e, caps);
                if (!p->from_disk)
                        log_info("Probed the emulator '%s': QEMU %u.%u.%u, %zu machines.", e->emulator,
                                 caps->version / 1000000, caps->version / 1000 % 1000, caps->version % 1000,
                                 caps->n_machines);
        } else
                entry_set_error(e, p->r < 0 ? p->r : -EBADMSG, p->error);
        probe_free(p);
        while (waiters) {
                Waiter *w = waiters;
                waiters = w->next;
                if (w->ready)
                        w->ready(w->userdata);
                free(w);
        }
}

static int on_probe_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Probe *p = userdata;

        loop_watch_note("the end of the capabilities probe of '%s'", p->entry->emulator);
        probe_finish(p);
        return 0;
}

static int probe_start(QemuCapsCache *c, Entry *e, const QemuCapsKey *key) {
        Probe *p = new0(Probe, 1);
        int r;

        if (!p)
                return -ENOMEM;
        p->entry = e;
        p->key = *key;
        p->kvm = c->kvm;
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        p->emulator = strdup(e->emulator);
        p->tmp_dir = strdup(c->tmp_dir);
        p->confinement = c->confinement;
        p->host = c->host;
        p->cache_path = cache_path(c, e->emulator);
        if (p->efd < 0 || !p->emulator || !p->tmp_dir || !p->cache_path) {
                probe_free(p);
                return -ENOMEM;
        }
        r = sd_event_add_io(c->event, &p->source, p->efd, EPOLLIN, on_probe_done, p);
        if (r >= 0)
                r = -pthread_create(&p->thread, NULL, probe_thread, p);
        if (r < 0) {
                probe_free(p);
                return r;
        }
        log_debug("Reading the capabilities of the emulator '%s' (probing it unless cached).", e->emulator);
        e->probe = p;
        return 0;
}

static int entry_get(QemuCapsCache *c, const char *emulator, Entry **ret) {
        Entry *e = hashmap_get(c->entries, emulator);
        int r;

        if (e) {
                *ret = e;
                return 0;
        }
        e = new0(Entry, 1);
        if (!e)
                return -ENOMEM;
        e->cache = c;
        e->emulator = strdup(emulator);
        if (!e->emulator) {
                free(e);
                return -ENOMEM;
        }
        r = hashmap_put(c->entries, e->emulator, e);
        if (r < 0) {
                free(e->emulator);
                free(e);
                return r;
        }
        *ret = e;
        return 0;
}

static int answer(Entry *e, QemuCaps **ret, VbError *reterr) {
        if (!e->caps)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "%s",
                                    e->error ?: "Failed to probe the emulator");
        *ret = qemu_caps_ref(e->caps);
        return 1;
}

int qemu_caps_cache_get(QemuCapsCache *c, const char *emulator, QemuCapsReady ready, void *userdata, QemuCaps **ret,
                        VbError *reterr) {
        QemuCapsKey key;
        Entry *e;
        int r;

        r = qemu_caps_key_of(emulator, &key);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "The emulator '%s' is not there: %s", emulator,
                                    strerror(-r));
        r = entry_get(c, emulator, &e);
        if (r < 0)
                return r;
        if (!e->probe && (e->caps || e->error) && qemu_caps_key_equal(&e->key, &key) && !entry_failure_stale(e))
                return answer(e, ret, reterr);
        if (!e->probe) {
                r = probe_start(c, e, &key);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to probe the emulator '%s': %s",
                                            emulator, strerror(-r));
        }
        if (!ready) {
                /* Wait here (bounded by the probe's own timeouts). */
                probe_finish(e->probe);
                return qemu_caps_cache_get(c, emulator, NULL, NULL, ret, reterr);
        }
        {
                Waiter *w = new0(Waiter, 1);
                if (!w)
                        return -ENOMEM;
                *w = (Waiter) { .ready = ready, .userdata = userdata, .next = e->probe->waiters };
                e->probe->waiters = w;
        }
        return 0;
}

void qemu_caps_cache_cancel(QemuCapsCache *c, void *userdata) {
        Entry *e;

        for (size_t i = 0; hashmap_iterate(c->entries, &i, (void **) &e, NULL);)
                if (e->probe)
                        for (Waiter **w = &e->probe->waiters; *w;) {
                                if ((*w)->userdata == userdata) {
                                        Waiter *x = *w;
                                        *w = x->next;
                                        free(x);
                                } else
                                        w = &(*w)->next;
                        }
}

void qemu_caps_cache_prefetch(QemuCapsCache *c, const char *emulator) {
        QemuCapsKey key;
        Entry *e;

        if (qemu_caps_key_of(emulator, &key) < 0 || entry_get(c, emulator, &e) < 0 || e->probe)
                return;
        if ((e->caps || e->error) && qemu_caps_key_equal(&e->key, &key) && !entry_failure_stale(e))
                return;
        (void) probe_start(c, e, &key);
}
