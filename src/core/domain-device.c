/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AttachDevice, DetachDevice and UpdateDevice without D-Bus: check everything against the live and the
 * saved definition, then write the saved one, ask the driver, and swap in the new definitions once the
 * driver agreed (writing the old saved one back when it didn't). A live detach waits for the guest:
 * the driver reports its answer as an event, or core gives up after the removal timeout. */
#include <stdio.h>

#include "conf/domain-access.h"
#include "conf/domain-devices.h"
#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-store.h"
#include "core/network.h"
#include "core/nodedev.h"
#include "core/snapshot.h"
#include "util/log.h"


struct DomainDeviceRemoval {
        Domain *domain;
        char *alias;
        DeviceDef *config_probe; /* remove the device it describes from the saved definition too */
        sd_event_source *timer;
        DomainWaitDone done;
        void *userdata;
        DomainDeviceRemoval *next;
};

/* What can be plugged in and out; everything else gives NotSupported (UpdateDevice takes any kind in the
 * saved definition). */
static const bool device_kind_pluggable[_DEVICE_KIND_MAX] = {
        [DEVICE_DISK] = true,     [DEVICE_CONTROLLER] = true, [DEVICE_FILESYSTEM] = true,
        [DEVICE_INTERFACE] = true, [DEVICE_SERIAL] = true,    [DEVICE_PARALLEL] = true,
        [DEVICE_CONSOLE] = true,  [DEVICE_CHANNEL] = true,    [DEVICE_INPUT] = true,
        [DEVICE_HOSTDEV] = true,  [DEVICE_REDIRDEV] = true,   [DEVICE_WATCHDOG] = true,
        [DEVICE_RNG] = true,      [DEVICE_SHMEM] = true,      [DEVICE_VSOCK] = true,
};

bool manager_network_forward_is_hostdev(Manager *m, const char *network) {
        Network *n = m->networks && network ? network_registry_by_name(m->networks, network) : NULL;

        /* An interface on such a network gets one of the network's host devices (a VF) when it starts. */
        return n && streq_ptr(network_forward_mode_name(n), "hostdev");
}

int manager_device_assigns_host_device(Manager *m, const DeviceDef *dev, char **ret_address) {
        _cleanup_free_ char *net = NULL;
        int r;

        r = device_def_host_device(dev, ret_address);
        if (r != 0)
                return r;
        if (device_def_is_host_device(dev)) {
                *ret_address = strdup("unspecified");
                return *ret_address ? 1 : -ENOMEM;
        }
        r = device_def_network(dev, &net);
        if (r <= 0 || !manager_network_forward_is_hostdev(m, net))
                return r < 0 ? r : 0;
        if (asprintf(ret_address, "network:%s", net) < 0)
                return -ENOMEM;
        return 1;
}

static bool has_live(const Domain *d) {
        return d->live && (d->state == DOMAIN_RUNNING || d->state == DOMAIN_PAUSED || d->state == DOMAIN_SHUTDOWN);
}

static int resolve_flags(Domain *d, unsigned flags, unsigned *ret, VbError *reterr) {
        if (flags == 0)
                flags = has_live(d) ? DOMAIN_DEVICE_LIVE : DOMAIN_DEVICE_CONFIG;
        if ((flags & DOMAIN_DEVICE_LIVE) && !has_live(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                    "Domain '%s' is not running: only its saved definition can be changed", d->name);
        if ((flags & DOMAIN_DEVICE_CONFIG) && !d->config)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                    "Domain '%s' is transient: it has no saved definition to change", d->name);
        *ret = flags;
        return 0;
}

/* A host device may go to one running domain only. */
static int check_host_device_free(Manager *m, Domain *d, const DeviceDef *dev, VbError *reterr) {
        _cleanup_free_ char *key = NULL;
        int r;

        r = device_def_host_device(dev, &key);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < m->n_domains; i++) {
                Domain *o = m->domains[i];

                if (o == d || !has_live(o))
                        continue;
                for (size_t j = 0; j < o->live->n_devices; j++) {
                        _cleanup_free_ char *other = NULL;

                        r = device_def_host_device(o->live->devices[j], &other);
                        if (r < 0)
                                return r;
                        if (other && streq(other, key))
                                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY,
                                                    "Host device '%s' is already given to domain '%s'", key, o->name);
                }
        }
        return 0;
}

/* Writes def as the saved definition of d, with access (NULL: d's); on failure nothing changed. */
static int save_config(Manager *m, Domain *d, const DomainDef *def, const DomainAccess *access, VbError *reterr) {
        return domain_store_save(m->durable, m->domains_dir, def, access ?: &d->access, reterr);
}

/* d's access record with the paths of dev recorded as who's (who: the caller attaching it; NULL: root),
 * where who is not the owner or granted a path otherwise. */
static int access_with_device(const Domain *d, const DeviceDef *dev, const DomainAccess *who, DomainAccess *ret) {
        _cleanup_(domain_paths_done) DomainPaths paths = {};
        DomainAccess a = {};
        int r;

        r = domain_access_copy(&d->access, &a);
        if (r >= 0)
                r = device_def_host_paths(dev, 0, &paths);
        for (size_t i = 0; r >= 0 && i < paths.n; i++) {
                uint32_t uid = who ? domain_access_uid_for(who, paths.v[i].path) : 0;
                if (uid != domain_access_uid_for(&a, paths.v[i].path))
                        r = domain_access_grant(&a, paths.v[i].path, uid);
        }
        /* The service's own grants made for this attach (a volume the caller may use: bus-domain.c). */
        for (size_t i = 0; r >= 0 && who && i < who->n_grants; i++)
                if (who->grants[i].uid == 0)
                        r = domain_access_grant(&a, who->grants[i].path, 0);
        if (r < 0) {
                domain_access_done(&a);
                return r;
        }
        *ret = a;
        return 0;
}

/* After the driver failed: the old saved definition back on disk. */
static void restore_config(Manager *m, Domain *d) {
        VbError e = VB_ERROR_NULL;

        if (save_config(m, d, d->config, NULL, &e) < 0)
                log_error("Failed to write back the saved definition of domain '%s': %s", d->name,
                          e.message ?: "unknown error");
        vb_error_free(&e);
}

static void swap_def(DomainDef **slot, DomainDef **new_def) {
        if (!*new_def)
                return;
        domain_def_free(*slot);
        *slot = TAKE_PTR(*new_def);
}

/* After the driver changed a running domain: its own live definition, which has what only it knows (the
 * tap it made, the address the hypervisor chose), replaces the one core built. Core's stays if the
 * driver can't tell. */
static void adopt_driver_live(Manager *m, Domain *d, DomainDef **new_live) {
        DomainDef *live = NULL;
        VbError e = VB_ERROR_NULL;

        if (!DRIVER_OP(m, domain_get_live))
                return;
        if (DRIVER_OP(m, domain_get_live)(m->driver, d->uuid, &live, &e) < 0) {
                log_debug("Domain '%s': keeping core's live definition: %s", d->name, strempty(e.message));
                vb_error_free(&e);
                return;
        }
        domain_def_free(*new_live);
        *new_live = live;
}

static void log_change(Domain *d, const char *what, const DeviceDef *dev, unsigned flags) {
        _cleanup_free_ char *desc = device_def_describe(dev);

        log_full(device_def_is_host_device(dev) ? LOG_NOTICE : LOG_INFO, "Domain '%s': %s %s (%s%s%s).", d->name,
                 what, strempty(desc), flags & DOMAIN_DEVICE_LIVE ? "live" : "",
                 (flags & DOMAIN_DEVICE_LIVE) && (flags & DOMAIN_DEVICE_CONFIG) ? ", " : "",
                 flags & DOMAIN_DEVICE_CONFIG ? "saved definition" : "");
}

/* Attach ------------------------------------------------------------------------------------------ */

static int prepare_attach_live(Domain *d, const DeviceDef *dev, unsigned flags, DeviceDef **ret_dev,
                               DomainDef **ret_def, VbError *reterr) {
        _cleanup_(device_def_freep) DeviceDef *ld = NULL;
        int r;

        r = device_def_copy(dev, &ld);
        if (r >= 0)
                r = domain_def_check_device_conflicts(d->live, ld, reterr);
        if (r >= 0)
                r = domain_def_assign_device_alias(d->live, ld);
        if (r >= 0)
                r = domain_def_assign_device_address(d->live, flags & DOMAIN_DEVICE_CONFIG ? d->config : NULL, ld,
                                                     reterr);
        if (r >= 0)
                r = domain_def_with_device_added(d->live, ld, ret_def);
        if (r < 0)
                return r;
        *ret_dev = TAKE_PTR(ld);
        return 0;
}

static void give_back_host_resources(Manager *m, Domain *d, const DeviceDef *dev) {
        hostdev_release_device(m, d->uuid, d->name, dev);
        if (dev->kind == DEVICE_INTERFACE)
                manager_domain_network_release_device(m, d->uuid, dev);
}

/* As when the domain starts: an interface on a network gets its port (*dev and the last device of
 * new_live become what it actually uses: the network's bridge, a macvtap, a VF of a hostdev pool), and a
 * host device is taken from the host (managed PCI: to vfio-pci; a VF: its MAC/VLAN). */
static int take_host_resources(Manager *m, Domain *d, DeviceDef **dev, DomainDef *new_live, VbError *reterr) {
        DeviceDef *resolved = NULL, *copy = NULL;
        int r;

        /* A volume disk: its volume's file, in *dev and in new_live. */
        r = manager_domain_volume_resolve_device(m, *dev, (uid_t) d->access.owner, &resolved, reterr);
        if (r < 0)
                return r;
        if (resolved) {
                r = device_def_copy(resolved, &copy);
                if (r < 0) {
                        device_def_free(resolved);
                        return r;
                }
                domain_def_remove_device(new_live, new_live->n_devices - 1);
                (void) domain_def_add_device(new_live, copy);
                device_def_free(*dev);
                *dev = resolved;
                resolved = copy = NULL;
        }
        r = manager_domain_network_acquire_device(m, d->uuid, *dev, &resolved, reterr);
        if (r < 0)
                return r;
        if (resolved) {
                r = device_def_copy(resolved, &copy);
                if (r < 0) {
                        give_back_host_resources(m, d, resolved);
                        device_def_free(resolved);
                        return r;
                }
                domain_def_remove_device(new_live, new_live->n_devices - 1);
                (void) domain_def_add_device(new_live, copy); /* room was just freed */
                device_def_free(*dev);
                *dev = resolved;
        }
        r = hostdev_prepare_device(m, d->uuid, d->name, *dev, reterr);
        if (r < 0 && resolved)
                manager_domain_network_release_device(m, d->uuid, *dev);
        return r;
}

static int prepare_attach_config(Domain *d, const DeviceDef *dev, const DeviceDef *live_dev, DomainDef **ret_def,
                                 VbError *reterr) {
        _cleanup_(device_def_freep) DeviceDef *cd = NULL;
        int r;

        r = device_def_copy(live_dev ?: dev, &cd);
        if (r < 0)
                return r;
        if (live_dev && !dev->alias) {
                /* Aliases we made up name the device in the running guest only, as with libvirt. */
                free(cd->alias);
                cd->alias = NULL;
        }
        r = domain_def_check_device_conflicts(d->config, cd, reterr);
        if (r >= 0)
                r = domain_def_assign_device_address(d->config, NULL, cd, reterr);
        if (r >= 0)
                r = domain_def_with_device_added(d->config, cd, ret_def);
        return r;
}

/* An attach or update the driver answers later: what to swap in when it agreed, what to give back and
 * write back when it did not. The domain is held (domain_op_hold) meanwhile. */
typedef struct DeviceChange {
        Manager *manager;
        DomainOp *op;
        const char *what;         /* "attached", "updated" */
        unsigned flags;
        DeviceDef *dev;           /* as asked (the log names it when there is no live_dev) */
        DeviceDef *live_dev;      /* what the running domain gets */
        bool host_resources;      /* live_dev took host resources (attach) */
        DomainDef *new_live, *new_config;
        DomainAccess new_access;  /* with new_config */
        VbDriverDone done;
        void *userdata;
} DeviceChange;

static DeviceChange *device_change_free(DeviceChange *c) {
        if (!c)
                return NULL;
        device_def_free(c->dev);
        device_def_free(c->live_dev);
        domain_def_free(c->new_live);
        domain_def_free(c->new_config);
        domain_access_done(&c->new_access);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceChange *, device_change_free);

static DeviceChange *device_change_new(Manager *m, const char *what, const DeviceDef *dev, unsigned flags,
                                       VbDriverDone done, void *userdata) {
        _cleanup_(device_change_freep) DeviceChange *c = new0(DeviceChange, 1);

        if (!c)
                return NULL;
        *c = (DeviceChange) { .manager = m, .what = what, .flags = flags, .done = done, .userdata = userdata };
        if (device_def_copy(dev, &c->dev) < 0)
                return NULL;
        return TAKE_PTR(c);
}

/* The driver answered (or there was nothing to ask it): everything swapped in, or given and written back.
 * d may be NULL (gone meanwhile). */
static void device_change_finish(DeviceChange *c, Domain *d, int r, const VbError *e) {
        Manager *m = c->manager;

        if (r < 0 || !d) {
                if (d && c->new_config)
                        restore_config(m, d);
                if (c->host_resources && d)
                        give_back_host_resources(m, d, c->live_dev);
                if (c->done)
                        c->done(r < 0 ? r : -ESRCH, e, c->userdata);
                return;
        }
        if (c->live_dev)
                adopt_driver_live(m, d, &c->new_live);
        swap_def(&d->live, &c->new_live);
        if (c->new_config) {
                domain_access_done(&d->access);
                d->access = c->new_access;
                c->new_access = (DomainAccess) {};
        }
        swap_def(&d->config, &c->new_config);
        log_change(d, c->what, c->live_dev ?: c->dev, c->flags);
        if (c->host_resources && m->events.domain_device_added)
                m->events.domain_device_added(m->events.userdata, d, c->live_dev->alias);
        if (c->done)
                c->done(0, NULL, c->userdata);
}

static void on_driver_device_changed(int r, const VbError *e, void *userdata) {
        _cleanup_(device_change_freep) DeviceChange *c = userdata;
        Domain *d = domain_op_release(TAKE_PTR(c->op));

        device_change_finish(c, d, r, e);
}

/* Hands c to the driver's op (attach or update) for live_dev: returns 1 when done now, 0 when c's done
 * follows, < 0 when it failed (c's changes undone). Takes c. */
static int device_change_run(Manager *m, Domain *d, DeviceChange *c, const DomainAccess *who,
                             int (*op)(VbDriver *drv, const char *uuid, const DeviceDef *dev,
                                       const DomainAccess *access, VbDriverDone done, void *userdata,
                                       VbError *reterr),
                             VbError *reterr) {
        _cleanup_(device_change_freep) DeviceChange *cc = c;
        int r;

        if (!cc->live_dev) {
                cc->done = NULL;
                device_change_finish(cc, d, 0, NULL);
                return 1;
        }
        r = domain_op_hold(m, d, cc->host_resources ? "attaching a device" : "updating a device", &cc->op);
        if (r >= 0)
                r = op(m->driver, d->uuid, cc->live_dev, who, on_driver_device_changed, cc, reterr);
        if (r == 0) {
                TAKE_PTR(cc);
                return 0;
        }
        (void) domain_op_release(TAKE_PTR(cc->op));
        cc->done = NULL;
        device_change_finish(cc, d, r, reterr);
        return r < 0 ? r : 1;
}

/* AttachDevice, UpdateDevice and DetachDevice kept while the store or the domain is busy
 * (domain-queue.c), with copies of their arguments. */
typedef enum DeviceCallKind { DEVICE_CALL_ATTACH, DEVICE_CALL_UPDATE, DEVICE_CALL_DETACH } DeviceCallKind;

typedef struct DeviceCallArgs {
        DeviceCallKind kind;
        DeviceDef *dev;
        DomainAccess who;
        unsigned flags;
        VbDriverDone done;           /* attach, update */
        DomainWaitDone detach_done;  /* detach */
        void *userdata;
} DeviceCallArgs;

static void device_call_free(void *p) {
        DeviceCallArgs *a = p;

        device_def_free(a->dev);
        domain_access_done(&a->who);
        free(a);
}

static int device_call_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        DeviceCallArgs *a = p;
        int r;

        switch (a->kind) {
        case DEVICE_CALL_ATTACH:
                return manager_domain_attach_device(m, d, a->dev, &a->who, a->flags, a->done, a->userdata, reterr);
        case DEVICE_CALL_UPDATE:
                return manager_domain_update_device(m, d, a->dev, &a->who, a->flags, a->done, a->userdata, reterr);
        default:
                r = manager_domain_detach_device(m, d, a->dev, a->flags, a->detach_done, a->userdata, reterr);
                return r == 1 ? 0 : r < 0 ? r : 1; /* its "later" is 1 */
        }
}

static void device_call_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        DeviceCallArgs *a = p;

        if (a->kind == DEVICE_CALL_DETACH)
                a->detach_done(d, r, e, a->userdata);
        else
                a->done(r, e, a->userdata);
}

static const QueuedCallType device_call_type = {
        .what = "changing the devices of a domain",
        .run = device_call_run,
        .answer = device_call_answer,
        .free = device_call_free,
};

/* Keeps the call: 0, or < 0 (reterr). */
static int device_call_queue(Manager *m, Domain *d, const DeviceCallArgs *args, const DeviceDef *dev,
                             const DomainAccess *who, VbError *reterr) {
        DeviceCallArgs *a = new0(DeviceCallArgs, 1);
        int r;

        if (!a)
                return -ENOMEM;
        *a = *args;
        a->dev = NULL;
        a->who = (DomainAccess) {};
        r = device_def_copy(dev, &a->dev);
        if (r >= 0 && who)
                r = domain_access_copy(who, &a->who);
        if (r >= 0)
                r = domain_queue_add(m, d, true, &device_call_type, a, reterr);
        if (r < 0)
                device_call_free(a);
        return r < 0 ? r : 0;
}

int manager_domain_attach_device(Manager *m, Domain *d, const DeviceDef *dev, const DomainAccess *who, unsigned flags,
                                 VbDriverDone done, void *userdata, VbError *reterr) {
        _cleanup_(device_change_freep) DeviceChange *c = NULL;
        int r;

        if (domain_queue_wanted(m, d, true) || domain_caps_pending(m, domain_current_def(d)))
                return device_call_queue(m, d, &(DeviceCallArgs) { .kind = DEVICE_CALL_ATTACH, .flags = flags,
                                         .done = done, .userdata = userdata }, dev, who, reterr);

        /* Not while a lifecycle operation waits for the hypervisor (domain-ops.c). */
        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        r = resolve_flags(d, flags, &flags, reterr);
        if (r < 0)
                return r;
        if (!device_kind_pluggable[dev->kind])
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Attaching a '%s' device is not supported",
                                    device_def_kind_name(dev));
        r = domain_caps_check_device(m, domain_current_def(d), dev, reterr); /* what the hypervisor cannot do */
        if (r < 0)
                return r;
        if ((flags & DOMAIN_DEVICE_LIVE) && !DRIVER_OP(m, domain_attach_device))
                return vb_driver_not_supported(m->driver, "attaching devices to a running domain", reterr);
        c = device_change_new(m, "attached", dev, flags, done, userdata);
        if (!c)
                return -ENOMEM;
        if (flags & DOMAIN_DEVICE_LIVE) {
                r = check_host_device_free(m, d, dev, reterr);
                if (r >= 0)
                        r = prepare_attach_live(d, dev, flags, &c->live_dev, &c->new_live, reterr);
                if (r < 0)
                        return r;
        }
        if (flags & DOMAIN_DEVICE_CONFIG) {
                r = prepare_attach_config(d, dev, c->live_dev, &c->new_config, reterr);
                if (r < 0)
                        return r;
        }
        /* Everything checked: now the changes, undone in reverse order on failure. */
        if (c->live_dev) {
                r = take_host_resources(m, d, &c->live_dev, c->new_live, reterr);
                if (r < 0)
                        return r;
                c->host_resources = true;
        }
        if (c->new_config) {
                r = access_with_device(d, dev, who, &c->new_access);
                if (r >= 0)
                        r = save_config(m, d, c->new_config, &c->new_access, reterr);
                if (r < 0) {
                        /* Nothing written: nothing to write back. */
                        c->new_config = domain_def_free(c->new_config);
                        c->done = NULL;
                        device_change_finish(c, d, r, reterr);
                        return r;
                }
        }
        return device_change_run(m, d, TAKE_PTR(c), who, DRIVER_OP(m, domain_attach_device), reterr);
}

/* Detach ------------------------------------------------------------------------------------------ */

static void removal_free(DomainDeviceRemoval *rm) {
        sd_event_source_disable_unref(rm->timer);
        device_def_free(rm->config_probe);
        free(rm->alias);
        free(rm);
}

static DomainDeviceRemoval *removal_find(Domain *d, const char *alias) {
        for (DomainDeviceRemoval *rm = d->removals; rm; rm = rm->next)
                if (streq(rm->alias, alias))
                        return rm;
        return NULL;
}

static void removal_unlink(Domain *d, DomainDeviceRemoval *rm) {
        for (DomainDeviceRemoval **p = &d->removals; *p; p = &(*p)->next)
                if (*p == rm) {
                        *p = rm->next;
                        return;
                }
}

/* Calls and forgets the removal's caller (removed from the list first: done may do anything). */
static void removal_finish(Domain *d, DomainDeviceRemoval *rm, int r, const VbError *e) {
        removal_unlink(d, rm);
        if (rm->done)
                rm->done(d, r, e, rm->userdata);
        removal_free(rm);
}

/* The device is gone from the running guest: a new live definition without it. */
static void live_remove(Domain *d, const char *alias) {
        _cleanup_(domain_def_freep) DomainDef *new_live = NULL;
        ssize_t i;

        if (!d->live || (i = domain_def_find_alias(d->live, alias)) < 0)
                return;
        /* The guest let go of it: a host device goes back to the host, a network port is released. */
        give_back_host_resources(d->manager, d, d->live->devices[i]);
        if (domain_def_with_device_removed(d->live, (size_t) i, &new_live) < 0) {
                log_error("Out of memory removing device '%s' from the live definition of '%s'.", alias, d->name);
                return;
        }
        adopt_driver_live(d->manager, d, &new_live);
        swap_def(&d->live, &new_live);
}

/* The saved half of a live+config detach, once the guest released the device; the store is idle
 * (manager_on_driver_device_removed keeps it in domain-queue.c otherwise). */
static int commit_config_removal(Manager *m, Domain *d, const DeviceDef *probe, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *new_config = NULL;
        size_t i;
        int r;

        if (!d->config)
                return 0;
        r = domain_def_find_device(d->config, probe, DEVICE_MATCH_EXACT, &i, reterr);
        if (r >= 0)
                r = domain_def_with_device_removed(d->config, i, &new_config);
        if (r >= 0)
                r = save_config(m, d, new_config, NULL, reterr);
        if (r < 0)
                return r;
        swap_def(&d->config, &new_config);
        return 0;
}

/* The saved half kept while the store commits definitions: args is the alias; the removal's caller is
 * answered when it runs (or with why it did not). */
static int config_removal_run(Manager *m, Domain *d, void *args, Domain **ret, VbError *reterr) {
        DomainDeviceRemoval *rm = removal_find(d, args);
        VbError e = VB_ERROR_NULL;
        int r = 0;

        if (!rm)
                return 1; /* ended meanwhile (its wait ran out) */
        if (rm->config_probe)
                r = commit_config_removal(m, d, rm->config_probe, &e);
        removal_finish(d, rm, r, &e);
        vb_error_free(&e);
        return 1;
}

static void config_removal_answer(Manager *m, Domain *d, void *args, int r, const VbError *e) {
        DomainDeviceRemoval *rm = d ? removal_find(d, args) : NULL;

        if (rm) /* not run (a run finished it already) */
                removal_finish(d, rm, r, e);
}

static const QueuedCallType config_removal_type = {
        .what = "removing a released device from a saved definition",
        .run = config_removal_run,
        .answer = config_removal_answer,
        .free = free,
};

void manager_on_driver_device_removed(void *userdata, const char *uuid, const char *alias) {
        Manager *m = userdata;
        Domain *d = manager_domain_by_uuid(m, uuid);
        DomainDeviceRemoval *rm;
        VbError e = VB_ERROR_NULL;
        int r = 0;

        if (!d) {
                log_debug("Device removal for unknown domain %s, ignoring.", uuid);
                return;
        }
        live_remove(d, alias);
        log_info("Domain '%s': the guest released device '%s'.", d->name, alias);
        if (m->events.domain_device_removed)
                m->events.domain_device_removed(m->events.userdata, d, alias);
        rm = removal_find(d, alias);
        if (!rm)
                return;
        if (rm->config_probe && domain_queue_wanted(m, d, true)) {
                char *a = strdup(alias);

                r = a ? domain_queue_add(m, d, true, &config_removal_type, a, &e) : -ENOMEM;
                if (r >= 0)
                        return; /* config_removal_run goes on */
                free(a);
        } else if (rm->config_probe)
                r = commit_config_removal(m, d, rm->config_probe, &e);
        removal_finish(d, rm, r, &e);
        vb_error_free(&e);
}

/* A hot-plug or update that a stop of the service cut short, which the driver finished or undid when it
 * found the domain again: core's live definition becomes the driver's, and a device that joined is told as
 * an attach is (DeviceAdded). */
void manager_on_driver_device_changed(void *userdata, const char *uuid, const char *alias, bool added) {
        Manager *m = userdata;
        Domain *d = manager_domain_by_uuid(m, uuid);
        _cleanup_(domain_def_freep) DomainDef *new_live = NULL;

        if (!d || !d->live) {
                log_debug("Device change for unknown or stopped domain %s, ignoring.", uuid);
                return;
        }
        adopt_driver_live(m, d, &new_live);
        if (!new_live)
                return;
        added = added && domain_def_find_alias(d->live, alias) < 0 && domain_def_find_alias(new_live, alias) >= 0;
        swap_def(&d->live, &new_live);
        log_info("Domain '%s': device '%s' %s while the service was stopped.", d->name, alias,
                 added ? "was added" : "changed");
        manager_snapshots_reconcile_merges(m, d);
        if (added && m->events.domain_device_added)
                m->events.domain_device_added(m->events.userdata, d, alias);
}

void manager_on_driver_device_removal_failed(void *userdata, const char *uuid, const char *alias,
                                             const char *reason) {
        Manager *m = userdata;
        Domain *d = manager_domain_by_uuid(m, uuid);
        DomainDeviceRemoval *rm;
        VbError e = VB_ERROR_NULL;
        int r;

        if (!d)
                return;
        log_warning("Domain '%s': device '%s' was not released: %s", d->name, alias, reason);
        if (m->events.domain_device_removal_failed)
                m->events.domain_device_removal_failed(m->events.userdata, d, alias, reason);
        rm = removal_find(d, alias);
        if (!rm)
                return;
        r = vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Domain '%s' did not release device '%s': %s", d->name,
                         alias, reason);
        removal_finish(d, rm, r, &e);
        vb_error_free(&e);
}

static int on_removal_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        DomainDeviceRemoval *rm = userdata;
        Domain *d = rm->domain;
        VbError e = VB_ERROR_NULL;
        int r;

        r = vb_error_set(&e, VB_ERROR_TIMEOUT,
                         "Domain '%s' did not release device '%s' within %llu ms; nothing was changed, but the guest "
                         "may still release it (DeviceRemoved then tells)",
                         d->name, rm->alias, (unsigned long long) (d->manager->device_removal_timeout_usec / 1000));
        removal_finish(d, rm, r, &e);
        vb_error_free(&e);
        return 0;
}

void domain_fail_device_removals(Domain *d, VbErrorCode code, const char *why) {
        while (d->removals) {
                DomainDeviceRemoval *rm = d->removals;
                VbError e = VB_ERROR_NULL;
                int r;

                r = vb_error_set(&e, code, "Domain '%s' %s before the guest released device '%s'", d->name, why,
                                 rm->alias);
                removal_finish(d, rm, r, &e);
                vb_error_free(&e);
        }
}

static int start_removal(Manager *m, Domain *d, const char *alias, const DeviceDef *probe, unsigned flags,
                         DomainWaitDone done, void *userdata) {
        DomainDeviceRemoval *rm;
        int r;

        rm = new0(DomainDeviceRemoval, 1);
        if (!rm)
                return -ENOMEM;
        rm->domain = d;
        rm->done = done;
        rm->userdata = userdata;
        rm->alias = strdup(alias);
        r = rm->alias ? 0 : -ENOMEM;
        if (r >= 0 && (flags & DOMAIN_DEVICE_CONFIG))
                r = device_def_copy(probe, &rm->config_probe);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &rm->timer, CLOCK_MONOTONIC, m->device_removal_timeout_usec,
                                               0, on_removal_timeout, rm);
        if (r < 0) {
                removal_free(rm);
                return r;
        }
        rm->next = d->removals;
        d->removals = rm;
        return 0;
}

/* Which removal the hypervisor's answer to the request is for (the removal may be over by then). */
typedef struct RemovalAsk {
        Manager *manager;
        char uuid[37];
        char *alias;
} RemovalAsk;

static void removal_ask_free(RemovalAsk *a) {
        if (a)
                free(a->alias);
        free(a);
}

static RemovalAsk *removal_ask_new(Manager *m, Domain *d, const char *alias) {
        RemovalAsk *a = new0(RemovalAsk, 1);

        if (!a)
                return NULL;
        a->manager = m;
        snprintf(a->uuid, sizeof a->uuid, "%s", d->uuid);
        a->alias = strdup(alias);
        if (!a->alias) {
                free(a);
                return NULL;
        }
        return a;
}

/* The hypervisor took the request (the guest's answer follows as an event) or refused it: then the caller
 * hears why, and nothing changed. */
static void on_detach_asked(int r, const VbError *e, void *userdata) {
        RemovalAsk *a = userdata;
        Domain *d = a ? manager_domain_by_uuid(a->manager, a->uuid) : NULL;
        DomainDeviceRemoval *rm = d ? removal_find(d, a->alias) : NULL;

        if (r < 0 && rm)
                removal_finish(d, rm, r, e);
        removal_ask_free(a);
}

int manager_domain_detach_device(Manager *m, Domain *d, const DeviceDef *probe, unsigned flags,
                                 DomainWaitDone done, void *userdata, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *new_config = NULL;
        _cleanup_free_ char *alias = NULL;
        DomainDeviceRemoval *rm;
        RemovalAsk *ask;
        size_t li, ci;
        int r;

        if (domain_queue_wanted(m, d, true)) {
                r = device_call_queue(m, d, &(DeviceCallArgs) { .kind = DEVICE_CALL_DETACH, .flags = flags,
                                      .detach_done = done, .userdata = userdata }, probe, NULL, reterr);
                return r < 0 ? r : 1; /* answered later */
        }

        /* Not while a lifecycle operation waits for the hypervisor (domain-ops.c). */
        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        r = resolve_flags(d, flags, &flags, reterr);
        if (r < 0)
                return r;
        if (!device_kind_pluggable[probe->kind])
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Detaching a '%s' device is not supported",
                                    device_def_kind_name(probe));
        if (flags & DOMAIN_DEVICE_LIVE) {
                if (!DRIVER_OP(m, domain_detach_device))
                        return vb_driver_not_supported(m->driver, "detaching devices from a running domain", reterr);
                r = domain_def_find_device(d->live, probe, DEVICE_MATCH_EXACT, &li, reterr);
                if (r < 0)
                        return r;
                if (!d->live->devices[li]->alias)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                            "The device has no alias in the running domain '%s'", d->name);
                alias = strdup(d->live->devices[li]->alias);
                if (!alias)
                        return -ENOMEM;
                if (removal_find(d, alias))
                        return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                            "Device '%s' of domain '%s' is being removed already", alias, d->name);
        }
        if (flags & DOMAIN_DEVICE_CONFIG) {
                r = domain_def_find_device(d->config, probe, DEVICE_MATCH_EXACT, &ci, reterr);
                if (r >= 0)
                        r = domain_def_with_device_removed(d->config, ci, &new_config);
                if (r < 0)
                        return r;
        }
        if (!alias) {
                r = save_config(m, d, new_config, NULL, reterr);
                if (r < 0)
                        return r;
                log_change(d, "detached", d->config->devices[ci], flags);
                swap_def(&d->config, &new_config);
                return 0;
        }

        log_change(d, "asked the guest to release", d->live->devices[li], flags);
        /* Waiting from now on: the guest's answer may come before the hypervisor's to the request. */
        r = start_removal(m, d, alias, probe, flags, done, userdata);
        if (r < 0)
                return r;
        ask = removal_ask_new(m, d, alias);
        r = DRIVER_OP(m, domain_detach_device)(m->driver, d->uuid, alias, on_detach_asked, ask, reterr);
        if (r == 0)
                return 1; /* on_detach_asked takes ask */
        removal_ask_free(ask);
        if (r == 2)
                return 1;
        /* Failed or gone at once: nobody waits. */
        rm = removal_find(d, alias);
        if (rm) {
                removal_unlink(d, rm);
                removal_free(rm);
        }
        if (r < 0)
                return r;
        if (new_config) {
                r = save_config(m, d, new_config, NULL, reterr);
                if (r >= 0)
                        swap_def(&d->config, &new_config);
        }
        live_remove(d, alias);
        if (m->events.domain_device_removed)
                m->events.domain_device_removed(m->events.userdata, d, alias);
        return r < 0 ? r : 0;
}

/* Update ------------------------------------------------------------------------------------------ */

static int prepare_update(Domain *d, const DomainDef *def, const DeviceDef *dev, bool live, DeviceDef **ret_dev,
                          DomainDef **ret_def, VbError *reterr) {
        _cleanup_(device_def_freep) DeviceDef *nd = NULL;
        _cleanup_(domain_def_freep) DomainDef *without = NULL;
        size_t i;
        int r;

        r = domain_def_find_device(def, dev, DEVICE_MATCH_IDENTITY, &i, reterr);
        if (r >= 0 && live)
                r = device_def_live_update(def->devices[i], dev, &nd, reterr);
        else if (r >= 0) {
                r = device_def_copy(dev, &nd);
                if (r >= 0)
                        r = device_def_complete_from(nd, def->devices[i]);
        }
        if (r >= 0 && !live) {
                /* What the new version says must not clash with the other devices. */
                r = domain_def_with_device_removed(def, i, &without);
                if (r >= 0)
                        r = domain_def_check_device_conflicts(without, nd, reterr);
        }
        if (r >= 0)
                r = domain_def_with_device_replaced(def, i, nd, ret_def);
        if (r < 0)
                return r;
        if (ret_dev)
                *ret_dev = TAKE_PTR(nd);
        return 0;
}

int manager_domain_update_device(Manager *m, Domain *d, const DeviceDef *dev, const DomainAccess *who, unsigned flags,
                                 VbDriverDone done, void *userdata, VbError *reterr) {
        _cleanup_(device_change_freep) DeviceChange *c = NULL;
        int r;

        if (domain_queue_wanted(m, d, true))
                return device_call_queue(m, d, &(DeviceCallArgs) { .kind = DEVICE_CALL_UPDATE, .flags = flags,
                                         .done = done, .userdata = userdata }, dev, who, reterr);

        /* Not while a lifecycle operation waits for the hypervisor (domain-ops.c). */
        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        r = resolve_flags(d, flags, &flags, reterr);
        if (r < 0)
                return r;
        c = device_change_new(m, "updated", dev, flags, done, userdata);
        if (!c)
                return -ENOMEM;
        if (flags & DOMAIN_DEVICE_LIVE) {
                if (!DRIVER_OP(m, domain_update_device))
                        return vb_driver_not_supported(m->driver, "changing devices of a running domain", reterr);
                r = prepare_update(d, d->live, dev, true, &c->live_dev, &c->new_live, reterr);
                if (r < 0)
                        return r;
        }
        if (flags & DOMAIN_DEVICE_CONFIG) {
                r = prepare_update(d, d->config, dev, false, NULL, &c->new_config, reterr);
                if (r >= 0)
                        r = access_with_device(d, dev, who, &c->new_access);
                if (r >= 0)
                        r = save_config(m, d, c->new_config, &c->new_access, reterr);
                if (r < 0)
                        return r;
        }
        return device_change_run(m, d, TAKE_PTR(c), who, DRIVER_OP(m, domain_update_device), reterr);
}
