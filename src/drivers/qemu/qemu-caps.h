/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "host/process.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "conf/domaincaps-conf.h"
#include "util/error.h"
#include "util/hashmap.h"

/* What one QEMU binary can do, found by running it: `-S -nodefaults -machine none` with a QMP socket,
 * asked query-version, query-target, query-kvm, query-machines, query-cpu-definitions (under TCG and,
 * when /dev/kvm opens, a second process under KVM, both at once), qom-list-types, query-commands and
 * the display types from query-qmp-schema; on x86 also the static expansion (query-cpu-model-expansion)
 * of every CPU model and of "max" under TCG, of "host" under KVM, and the CPU's hv-* properties
 * (qemu-caps-probe.c). The answers are kept as one JSON
 * document: in memory, and on disk under <state>/qemu/caps/, keyed by the binary's path, device, inode,
 * size and mtime, so that a changed binary is probed again (qemu-caps-cache.c). */

/* The probe document's format: a cached document of another format is probed again. */
#define QEMU_CAPS_PROBE_FORMAT 2

/* Identifies one version of a file. */
typedef struct QemuCapsKey {
        dev_t dev;
        ino_t ino;
        off_t size;
        int64_t mtime_nsec;
} QemuCapsKey;

int qemu_caps_key_of(const char *path, QemuCapsKey *ret);
bool qemu_caps_key_equal(const QemuCapsKey *a, const QemuCapsKey *b);

typedef struct QemuCapsMachine {
        const char *name;  /* all strings point into the document */
        const char *alias; /* "pc", "q35" or NULL */
        unsigned max_cpus;
        bool is_default;
        bool deprecated;
} QemuCapsMachine;

typedef struct QemuCaps {
        unsigned n_ref;
        char *emulator;
        QemuCapsKey key;
        struct json_object *doc;
        const char *arch;  /* libvirt's name (x86_64, i686, aarch64...) */
        unsigned version;  /* major * 1000000 + minor * 1000 + micro */
        bool kvm_present, kvm_enabled; /* KVM answered (kvm_enabled: the KVM probe ran) */
        QemuCapsMachine *machines;
        size_t n_machines;
        Hashmap *types;    /* QOM type names (value: non-NULL) */
        Hashmap *commands; /* QMP command names */
        Hashmap *displays; /* display types (-display) */
        Hashmap *domain_caps; /* "virttype/machine" -> DomainCaps, built on first request */
} QemuCaps;

QemuCaps *qemu_caps_ref(QemuCaps *c);
QemuCaps *qemu_caps_unref(QemuCaps *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(QemuCaps *, qemu_caps_unref);

/* From a probe document (takes doc, also on failure). */
int qemu_caps_from_doc(struct json_object *doc, QemuCaps **ret, char **ret_error);

bool qemu_caps_has_type(const QemuCaps *c, const char *type);
/* The machine called name or aliased so; NULL if none. The default machine (is-default). */
const QemuCapsMachine *qemu_caps_find_machine(const QemuCaps *c, const char *name);
const QemuCapsMachine *qemu_caps_default_machine(const QemuCaps *c);
/* The CPU definitions as probed under TCG ("tcg") or KVM ("kvm"): a json array, NULL if not probed. */
struct json_object *qemu_caps_cpus(const QemuCaps *c, bool kvm);

/* Whether the CPU model name of a query-cpu-definitions answer is one domain capabilities list: not
 * "max", "host" or "base", and not "EPYC-v2" when "EPYC" is listed too (a version of a model that is
 * shown by its plain name). */
bool qemu_caps_cpu_listed(struct json_object *cpus, const char *name);

/* libvirt's arch name for QEMU's target name (i386 -> i686), and back; NULL if unknown. */
const char *qemu_caps_arch_from_qemu(const char *qemu_arch);
const char *qemu_caps_arch_to_qemu(const char *arch);

/* Runs emulator (twice at once when kvm, the second under KVM) and returns the probe document. Blocks
 * for the probe (about 0.1 s): called from a worker thread. tmp_dir holds the sockets. confinement
 * (NULL: none) shuts the probing QEMUs in as any other (host/process.h). */
int qemu_caps_probe(const char *emulator, const QemuCapsKey *key, const char *tmp_dir, bool kvm,
                    const HostConfinement *confinement, struct json_object **ret, char **ret_error);

/* How long each step of a probe may take (30 s; $VIRTBUS_QEMU_PROBE_TIMEOUT_MS for tests). A failed probe
 * is answered for as long, then the next call probes again. */
uint64_t qemu_caps_probe_timeout(void);

/* Host facts the domain capabilities need besides the emulator (the caller reads them). */
typedef struct QemuHostFacts {
        bool kvm_usable;  /* /dev/kvm opens */
        bool vfio_usable; /* /dev/vfio/vfio and IOMMU groups in sysfs */
        const char *firmware_dirs[4]; /* descriptor directories, NULL-terminated */
} QemuHostFacts;

/* The domain capabilities for virttype ("qemu"/"kvm") and machine (canonical name) of c; cached in c.
 * Returns a new reference. */
int qemu_caps_domain_caps(QemuCaps *c, const QemuHostFacts *host, const char *virttype,
                          const QemuCapsMachine *machine, DomainCaps **ret);

/* A cache of QemuCaps per emulator path with background probing on sd-event. */
typedef struct QemuCapsCache QemuCapsCache;

/* confinement (NULL: none; kept by reference) for the probes. */
int qemu_caps_cache_new(sd_event *event, const char *cache_dir, const char *tmp_dir, bool kvm,
                        const HostConfinement *confinement, QemuCapsCache **ret);
QemuCapsCache *qemu_caps_cache_free(QemuCapsCache *c);

typedef void (*QemuCapsReady)(void *userdata);
/* The capabilities of emulator, current (the binary unchanged since they were found):
 *   1 with *ret (a reference) when known now (memory or disk cache);
 *   0 when a probe is running: ready(userdata) is called from the event loop when it ended, then ask
 *     again (ready NULL: wait for it here instead, bounded, and return 1 or the error);
 *   < 0 with reterr when the probe failed. */
int qemu_caps_cache_get(QemuCapsCache *c, const char *emulator, QemuCapsReady ready, void *userdata,
                        QemuCaps **ret, VbError *reterr);
/* Forgets waiters with this userdata (a caller that went away). */
void qemu_caps_cache_cancel(QemuCapsCache *c, void *userdata);
/* Starts probing emulator in the background if it is not known (at driver start). */
void qemu_caps_cache_prefetch(QemuCapsCache *c, const char *emulator);
/* The host the domain capabilities built ahead (in the thread) are for. */
void qemu_caps_cache_set_host(QemuCapsCache *c, const QemuHostFacts *host);
