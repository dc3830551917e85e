/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qemu driver's capabilities ops: which emulators there are, GetDomainCapabilities' defaults and
 * errors, and the guests of GetCapabilities. Probing and caching: qemu-caps-cache.c. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "conf/hostcaps-conf.h"
#include "drivers/qemu/qemu-caps-driver.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-firmware.h"
#include "host/host-virt.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"

struct QemuCapsDriver {
        QemuCapsCache *cache;
        bool kvm_usable, vfio_usable;
        char *host_arch;
        /* qemu-system-* found in the usual directories, and their arch (libvirt names). */
        char **emulators, **emulator_arches;
        size_t n_emulators;
};

static const char * const emulator_dirs[] = { "/usr/bin", "/usr/local/bin" };

/* Lists path (taken) for the arch its name says, unless that arch has one already. */
static void add_emulator(QemuCapsDriver *d, char *path) {
        const char *base = strrchr(path, '/'), *arch;
        char **e, **a;

        base = base ? base + 1 : path;
        arch = strncmp(base, "qemu-system-", 12) == 0 ? qemu_caps_arch_from_qemu(base + 12) : NULL;
        for (size_t j = 0; arch && j < d->n_emulators; j++)
                if (streq(d->emulator_arches[j], arch))
                        arch = NULL;
        e = !arch || access(path, X_OK) < 0 ? NULL : realloc(d->emulators, (d->n_emulators + 1) * sizeof(char *));
        if (!e) {
                free(path);
                return;
        }
        d->emulators = e;
        a = realloc(d->emulator_arches, (d->n_emulators + 1) * sizeof(char *));
        if (!a) {
                free(path);
                return;
        }
        d->emulator_arches = a;
        d->emulators[d->n_emulators] = path;
        d->emulator_arches[d->n_emulators] = (char *) arch;
        d->n_emulators++;
}

static void find_emulators(QemuCapsDriver *d, const char *own) {
        if (own) {
                char *path = strdup(own);
                if (path)
                        add_emulator(d, path);
        }
        for (size_t i = 0; i < ELEMENTSOF(emulator_dirs); i++) {
                _cleanup_(closedirp) DIR *dir = opendir(emulator_dirs[i]);
                struct dirent *de;

                while (dir && (de = readdir(dir))) {
                        char *path = NULL;

                        if (strncmp(de->d_name, "qemu-system-", 12) != 0 ||
                            asprintf(&path, "%s/%s", emulator_dirs[i], de->d_name) < 0)
                                continue;
                        add_emulator(d, path);
                }
        }
}

static QemuHostFacts host_facts(const QemuCapsDriver *d);

int qemu_caps_driver_new(sd_event *event, const char *state_dir, const char *runtime_dir, const char *emulator,
                         const HostConfinement *confinement, QemuCapsDriver **ret) {
        _cleanup_free_ char *cache_dir = NULL, *tmp_dir = NULL;
        QemuCapsDriver *d = new0(QemuCapsDriver, 1);
        struct utsname u;
        int r;

        if (!d)
                return -ENOMEM;
        d->kvm_usable = host_kvm_usable();
        d->vfio_usable = host_vfio_usable();
        (void) uname(&u);
        d->host_arch = strdup(streq(u.machine, "i386") || streq(u.machine, "i586") ? "i686" : u.machine);
        if (!d->host_arch || asprintf(&cache_dir, "%s/qemu/caps", state_dir) < 0 ||
            asprintf(&tmp_dir, "%s/qemu/probe", runtime_dir) < 0) {
                qemu_caps_driver_free(d);
                return -ENOMEM;
        }
        r = qemu_caps_cache_new(event, cache_dir, tmp_dir, d->kvm_usable, confinement, &d->cache);
        if (r < 0) {
                qemu_caps_driver_free(d);
                return r;
        }
        {
                QemuHostFacts host = host_facts(d);

                qemu_caps_cache_set_host(d->cache, &host);
        }
        find_emulators(d, emulator);
        /* Probe the host's own emulator now, so that the first definitions are checked without a wait. */
        for (size_t i = 0; i < d->n_emulators; i++)
                if (streq(d->emulator_arches[i], d->host_arch))
                        qemu_caps_cache_prefetch(d->cache, d->emulators[i]);
        *ret = d;
        return 0;
}

QemuCapsDriver *qemu_caps_driver_free(QemuCapsDriver *d) {
        if (!d)
                return NULL;
        qemu_caps_cache_free(d->cache);
        for (size_t i = 0; i < d->n_emulators; i++)
                free(d->emulators[i]);
        free(d->emulators);
        free(d->emulator_arches);
        free(d->host_arch);
        free(d);
        return NULL;
}

static char *list_emulators(const QemuCapsDriver *d) {
        StrBuf b = STRBUF_NULL;

        for (size_t i = 0; i < d->n_emulators; i++)
                strbuf_appendf(&b, "%s'%s' (%s)", i > 0 ? ", " : "", d->emulators[i], d->emulator_arches[i]);
        if (d->n_emulators == 0)
                strbuf_append(&b, "none");
        return strbuf_steal(&b);
}

/* An emulator named by the caller runs as us: only a qemu-system-* binary that only root (or our own
 * user) can change, in a directory only they can change. */
static int check_emulator(const char *path, char **ret_real, VbError *reterr) {
        _cleanup_free_ char *real = NULL, *dir = NULL;
        const char *base;
        struct stat st, dst;

        if (path[0] != '/')
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The emulator '%s' is not an absolute path", path);
        real = realpath(path, NULL);
        if (!real)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "No emulator '%s': %s", path, strerror(errno));
        base = strrchr(real, '/') + 1;
        if (strncmp(base, "qemu-system-", 12) != 0 && !streq(base, "qemu-kvm"))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "The emulator '%s' is not a QEMU system emulator (qemu-system-*)", path);
        dir = strndup(real, (size_t) (base - 1 - real));
        if (!dir)
                return -ENOMEM;
        if (stat(real, &st) < 0 || stat(*dir ? dir : "/", &dst) < 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "No emulator '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The emulator '%s' is not an executable file", path);
        if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)) ||
            (dst.st_uid != 0 && dst.st_uid != geteuid()) || ((dst.st_mode & (S_IWGRP | S_IWOTH)) && !(dst.st_mode & S_ISVTX)))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "The emulator '%s' may be changed by other users than root; refusing to run it", path);
        *ret_real = TAKE_PTR(real);
        return 0;
}

static int resolve_emulator(QemuCapsDriver *d, const VbDomainCapsQuery *q, char **ret, VbError *reterr) {
        const char *arch = isempty(q->arch) ? d->host_arch : q->arch;
        _cleanup_free_ char *list = NULL;

        if (!isempty(q->emulator))
                return check_emulator(q->emulator, ret, reterr);
        for (size_t i = 0; i < d->n_emulators; i++)
                if (streq(d->emulator_arches[i], arch)) {
                        *ret = strdup(d->emulators[i]);
                        return *ret ? 0 : -ENOMEM;
                }
        list = list_emulators(d);
        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "No emulator for arch '%s'; the emulators here are %s",
                            arch, strempty(list));
}

static char *list_machines(const QemuCaps *c) {
        StrBuf b = STRBUF_NULL;

        for (size_t i = 0; i < c->n_machines; i++) {
                strbuf_appendf(&b, "%s'%s'", i > 0 ? ", " : "", c->machines[i].name);
                if (c->machines[i].alias)
                        strbuf_appendf(&b, " ('%s')", c->machines[i].alias);
        }
        return strbuf_steal(&b);
}

static QemuHostFacts host_facts(const QemuCapsDriver *d) {
        QemuHostFacts h = { .kvm_usable = d->kvm_usable, .vfio_usable = d->vfio_usable };
        for (size_t i = 0; qemu_firmware_dirs[i] && i + 1 < ELEMENTSOF(h.firmware_dirs); i++)
                h.firmware_dirs[i] = qemu_firmware_dirs[i];
        return h;
}

int qemu_caps_driver_domain_caps(QemuCapsDriver *d, const VbDomainCapsQuery *q, VbDriverCapsReady ready,
                                 void *userdata, DomainCaps **ret, VbError *reterr) {
        _cleanup_(qemu_caps_unrefp) QemuCaps *caps = NULL;
        _cleanup_free_ char *emulator = NULL;
        const QemuCapsMachine *machine;
        const char *virttype;
        QemuHostFacts host = host_facts(d);
        int r;

        r = resolve_emulator(d, q, &emulator, reterr);
        if (r < 0)
                return r;
        r = qemu_caps_cache_get(d->cache, emulator, ready, userdata, &caps, reterr);
        if (r <= 0)
                return r;
        if (!isempty(q->arch) && !streq(q->arch, caps->arch))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The emulator '%s' runs arch '%s', not '%s'",
                                    emulator, caps->arch, q->arch);
        if (isempty(q->virttype))
                virttype = d->kvm_usable && caps->kvm_enabled ? "kvm" : "qemu";
        else if (streq(q->virttype, "qemu"))
                virttype = "qemu";
        else if (streq(q->virttype, "kvm")) {
                if (!d->kvm_usable || !caps->kvm_enabled)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "Virt type 'kvm' is not usable here (%s); virt type 'qemu' is",
                                            !d->kvm_usable ? "/dev/kvm does not open" : "QEMU could not enable KVM");
                virttype = "kvm";
        } else
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Unknown virt type '%s'; the qemu driver runs 'qemu'%s", q->virttype,
                                    d->kvm_usable && caps->kvm_enabled ? " and 'kvm'" : "");
        machine = isempty(q->machine) ? qemu_caps_default_machine(caps) : qemu_caps_find_machine(caps, q->machine);
        if (!machine) {
                _cleanup_free_ char *list = list_machines(caps);
                if (isempty(q->machine))
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "The emulator '%s' has no machines", emulator);
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The emulator '%s' has no machine '%s'; it has %s",
                                    emulator, q->machine, strempty(list));
        }
        return qemu_caps_domain_caps(caps, &host, virttype, machine, ret) < 0 ? -ENOMEM : 1;
}

static int add_guest(QemuCapsDriver *d, HostCaps *hc, const QemuCaps *c) {
        HostCapsGuest *g = host_caps_add_guest(hc, "hvm", c->arch, strstr(c->arch, "64") ? 64 : 32, c->emulator);
        int r;

        if (!g)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_machines; i++) {
                const QemuCapsMachine *m = &c->machines[i];
                if ((r = host_caps_guest_add_machine(g, m->name, NULL, m->max_cpus, m->deprecated)) < 0 ||
                    (m->alias && (r = host_caps_guest_add_machine(g, m->alias, m->name, m->max_cpus, m->deprecated)) < 0))
                        return r;
        }
        if ((r = host_caps_guest_add_domain_type(g, "qemu")) < 0)
                return r;
        if (d->kvm_usable && c->kvm_enabled && (r = host_caps_guest_add_domain_type(g, "kvm")) < 0)
                return r;
        return 0;
}

int qemu_caps_driver_host_caps(QemuCapsDriver *d, HostCaps *hc, VbDriverCapsReady ready, void *userdata,
                               VbError *reterr) {
        QemuCaps **all = new0(QemuCaps *, d->n_emulators);
        bool waiting = false;
        int r = 1;

        if (!all)
                return -ENOMEM;
        /* Every emulator is asked (so that all probes run at once); one waiter at most. */
        for (size_t i = 0; i < d->n_emulators && r >= 0; i++) {
                VbError e = VB_ERROR_NULL;
                int k = qemu_caps_cache_get(d->cache, d->emulators[i], waiting ? NULL : ready, userdata, &all[i], &e);

                if (k == 0 && ready)
                        waiting = true;
                else if (k < 0)
                        log_warning("Leaving out '%s': %s", d->emulators[i], e.message ?: strerror(-k));
                vb_error_free(&e);
        }
        for (size_t i = 0; i < d->n_emulators && !waiting && r >= 0; i++)
                if (all[i] && add_guest(d, hc, all[i]) < 0)
                        r = -ENOMEM;
        for (size_t i = 0; i < d->n_emulators; i++)
                qemu_caps_unref(all[i]);
        free(all);
        (void) reterr;
        return r < 0 ? r : waiting ? 0 : 1;
}

void qemu_caps_driver_cancel(QemuCapsDriver *d, void *userdata) {
        qemu_caps_cache_cancel(d->cache, userdata);
}

int qemu_domain_capabilities(VbDriver *drv, const VbDomainCapsQuery *q, VbDriverCapsReady ready, void *userdata,
                             DomainCaps **ret, VbError *reterr) {
        QemuDriver *qd = drv->priv;
        return qemu_caps_driver_domain_caps(qd->caps, q, ready, userdata, ret, reterr);
}

int qemu_capabilities(VbDriver *drv, HostCaps *caps, VbDriverCapsReady ready, void *userdata, VbError *reterr) {
        QemuDriver *qd = drv->priv;
        return qemu_caps_driver_host_caps(qd->caps, caps, ready, userdata, reterr);
}

void qemu_capabilities_cancel(VbDriver *drv, void *userdata) {
        QemuDriver *qd = drv->priv;
        qemu_caps_driver_cancel(qd->caps, userdata);
}
