/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "core/domain.h"
#include "core/network.h"
#include "core/nodedev.h"
#include "core/storage.h"
#include "drivers/driver.h"
#include "util/error.h"
#include "util/hashmap.h"

typedef enum ManagerMode {
        MANAGER_SYSTEM,
        MANAGER_USER,
} ManagerMode;

typedef struct ManagerConfig {
        ManagerMode mode;
        const char *driver;
        const char *config_dir;
        const char *state_dir;
        const char *runtime_dir;
        const char *sysfs_root;
        /* How long DetachDevice waits for the guest to release a device (0: the default, 10 s). */
        uint64_t device_removal_timeout_usec;
        /* Network backend: "simulated", "host", or NULL for the driver's choice (core/network.h). */
        const char *network_backend;
} ManagerConfig;

/* How core tells the outside (the bus layer) about changes. */
typedef struct ManagerEvents {
        void (*domain_added)(void *userdata, Domain *d);
        /* Called before the domain is freed. */
        void (*domain_removed)(void *userdata, Domain *d);
        /* properties: NULL-terminated names of the Domain properties that changed. */
        void (*domain_changed)(void *userdata, Domain *d, const char * const *properties);
        /* A device was plugged into / released by the running domain (domain-device.c), or the guest
         * refused to release it. */
        void (*domain_device_added)(void *userdata, Domain *d, const char *alias);
        void (*domain_device_removed)(void *userdata, Domain *d, const char *alias);
        void (*domain_device_removal_failed)(void *userdata, Domain *d, const char *alias, const char *reason);
        /* Snapshots taken, found or deleted (core/snapshot.c); removed: before it is freed. changed: the
         * DomainSnapshot properties named (NULL-terminated). */
        void (*snapshot_added)(void *userdata, struct DomainSnapshot *s);
        void (*snapshot_removed)(void *userdata, struct DomainSnapshot *s);
        void (*snapshot_changed)(void *userdata, struct DomainSnapshot *s, const char * const *properties);
        /* How far a long operation on the domain got (saving or restoring its state): done of about total. */
        void (*domain_progress)(void *userdata, Domain *d, uint64_t done, uint64_t total);
        /* Node devices found, gone, or changed by a re-scan (nodedev.c); removed: before it is freed. */
        void (*nodedev_added)(void *userdata, NodeDevice *d);
        void (*nodedev_removed)(void *userdata, NodeDevice *d);
        void (*nodedev_changed)(void *userdata, NodeDevice *d, const char * const *properties);
        void *userdata;
} ManagerEvents;

/* The service's state, independent of D-Bus: the driver and the registries of domains (networks
 * and node devices later). src/bus exposes it; it never sees a bus message. */
struct Manager {
        ManagerMode mode;
        sd_event *event;
        char *config_dir;
        char *domains_dir;   /* config_dir/domains: one <uuid>.xml per persistent domain */
        char *autostart_dir; /* domains_dir/autostart: one marker per autostarted domain */
        char *state_dir;
        char *runtime_dir;
        char *sysfs_root;
        VbDriver *driver;
        ManagerEvents events;
        uint64_t device_removal_timeout_usec;
        NetworkRegistry *networks; /* core/network.h */
        StorageRegistry *storage;  /* core/storage.h */

        /* Drops the compiled XML schemas when no definition was parsed for a while (they take MBs). */
        sd_event_source *schema_release_timer;
        struct Worker *schema_worker; /* frees the compiled schemas (manager.c); started on first use */

        /* DefineDomain calls waiting for the group commit (domain-define.c). */
        struct PendingDefine *pending_defines;
        size_t n_pending_defines, n_pending_defines_allocated;
        sd_event_source *define_commit_source;
        struct DefineBatch *define_batch; /* being committed by store_worker: at most one */
        struct Worker *store_worker;      /* syncs off the event loop (util/worker.h); started on first use */
        unsigned n_store_jobs;            /* other changes it makes, in flight (Autostart) */
        /* DefineDomain calls that wait for the hypervisor's capabilities to be probed, in arrival order;
         * checked and handed to the group commit once the probe ended (domain-define.c). */
        struct PendingDefine *caps_defines;
        size_t n_caps_defines, n_caps_defines_allocated;
        bool caps_probing; /* core waits for a probe of the driver's (domain-caps-check.c) */
        /* DefineDomain waits for a probe at most CAPS_DEFINE_WAIT_USEC: then the waiting definitions, and
         * those that come until the probe ends, are taken unchecked, as when a probe fails. */
        sd_event_source *caps_wait_timer;
        bool caps_wait_over;
        struct RenameCommit *renames;     /* Renames being committed: their new names are taken (domain-ops.c) */
        struct Durable *durable;          /* every other saved file's changes, committed by store_worker */

        /* Calls kept until the store and their domain are ready, in arrival order (domain-queue.c). */
        struct QueuedCall *queue;
        size_t n_queued;
        bool queue_bypass; /* a kept call is running */
        sd_event_source *queue_defer, *queue_timer;

        Hashmap *domains_by_uuid;
        Hashmap *domains_by_name;
        Domain **domains;        /* in order of definition */
        size_t n_domains, n_domains_allocated;

        struct Migration *migrations; /* live migrations in or out (domain-migrate.c) */

        NodeDevState nodedev; /* node devices and the host devices domains hold (nodedev.c, hostdev.c) */
};

int manager_new(const ManagerConfig *cfg, sd_event *event, Manager **ret, VbError *reterr);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

void manager_set_events(Manager *m, const ManagerEvents *events);

/* virtbusd is stopping (SIGTERM): changes that would begin now are refused ("virtbusd is stopping"),
 * network starts and stops, host device changes and storage pools' work (Build, Start, Stop, Refresh) not
 * yet begun are answered so; those running go on. */
void manager_stop_begin(Manager *m);
/* How many such changes still run (0: virtbusd may exit: all have been answered). */
unsigned manager_stop_pending(const Manager *m);
/* They ran too long: the helper processes they wait for are killed (after a short grace), so that they
 * fail, undo what they did and are answered. */
void manager_stop_cut(Manager *m);
/* virtbusd exits without those still running: the callers of the ones that can be answered without them
 * (node device changes hung in the kernel) are told so. */
void manager_stop_abandon(Manager *m);
/* Loads saved definitions, finds running domains again, starts autostart domains. */
int manager_load(Manager *m, VbError *reterr);

const char *manager_driver_name(const Manager *m);

Domain *manager_domain_by_uuid(const Manager *m, const char *uuid);
Domain *manager_domain_by_name(const Manager *m, const char *name);

/* DefineDomain: new or updated saved definition. *ret_created tells which. */
int manager_domain_define(Manager *m, const char *xml, Domain **ret, bool *ret_created, VbError *reterr);
/* DefineDomain for many callers at once: def (taken) is checked now — an error is returned at once —
 * and saved together with the other definitions that arrive before the event loop goes idle (one sync
 * for all: a group commit); then done is called with the domain, or with the error. */
typedef void (*DomainDefineDone)(Manager *m, Domain *d, bool created, int r, const VbError *e, void *userdata);
/* access (copied; NULL: root's) says whose rights open the definition's host paths. */
int manager_domain_define_async(Manager *m, DomainDef *def, const DomainAccess *access, DomainDefineDone done,
                                void *userdata, VbError *reterr);

/* The host paths of def, or of dev alone when given (then def, the domain's, may be NULL), that uid may
 * not use as the domain would (read, write, create, bind...): filled into *ret, empty when all is fine
 * (always for uid 0). Missing files do not count: they may appear before the start. */
int manager_domain_paths_denied(Manager *m, const DomainDef *def, const DeviceDef *dev, uint32_t uid,
                                DomainPaths *ret, VbError *reterr);

/* CreateDomain: a transient domain, started at once. */
int manager_domain_create(Manager *m, const char *xml, bool paused, Domain **ret, VbError *reterr);
/* The same with a parsed definition, which they take (also on failure). */
int manager_domain_define_def(Manager *m, DomainDef *def, Domain **ret, bool *ret_created, VbError *reterr);
/* Returns 1 with *ret when it runs now, or 0 when done(d, r, e, userdata) follows (d NULL on failure). */
int manager_domain_create_def(Manager *m, DomainDef *def, const DomainAccess *access, bool paused,
                              DomainWaitDone done, void *userdata, Domain **ret, VbError *reterr);

/* The lifecycle operations that wait for the hypervisor (start, shutdown, reboot, reset, suspend,
 * resume) return 1 when done now, < 0 when they failed now (reterr), or 0 when done(d, r, e, userdata)
 * follows from the event loop, exactly once (d NULL if the domain went away meanwhile; done may be
 * NULL: a failure is then only logged). One runs per domain at a time: a second lifecycle call while
 * one is in flight fails at once with InvalidState ("busy starting"), and so do Undefine, Rename and
 * changes to devices, memory and snapshots; other domains are not held up. Destroy ends the operation in
 * flight (its caller hears why), unless it is a start. */
int manager_domain_start(Manager *m, Domain *d, bool paused, DomainWaitDone done, void *userdata, VbError *reterr);
/* The same, kept in core while the hypervisor's capabilities are being probed (domain-caps.h): Start and
 * autostart; 0 when kept (done follows). */
int manager_domain_start_when_ready(Manager *m, Domain *d, bool paused, DomainWaitDone done, void *userdata,
                                    VbError *reterr);
int manager_domain_destroy(Manager *m, Domain *d, VbError *reterr);
/* The same for a caller who can wait: 1 when done now, 0 when done(d) follows once the hypervisor ended
 * (the domain is busy "being destroyed" meanwhile), < 0 when it failed. */
int manager_domain_destroy_async(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr);
/* Asks the guest to power off; domain_wait_for_stop() waits for it. */
int manager_domain_shutdown(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr);
int manager_domain_reboot(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr);
int manager_domain_reset(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr);
/* Consoles and displays (core/domain-console.c; driver.h says what each returns). */
int manager_domain_open_console(Manager *m, Domain *d, const char *device, bool force, VbDriverFdDone done,
                                void *userdata, VbError *reterr);
int manager_domain_open_graphics(Manager *m, Domain *d, unsigned index, bool skip_auth, VbDriverFdDone done,
                                 void *userdata, VbError *reterr);
int manager_domain_screenshot(Manager *m, Domain *d, unsigned screen, VbDriverScreenshotDone done, void *userdata,
                              VbError *reterr);
int manager_domain_suspend(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr);
int manager_domain_resume(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr);

/* Answers every call kept by core (OperationFailed: virtbusd is stopping); before the bus goes. */
void manager_cancel_queued(Manager *m);

/* The signature of the operations above. */
typedef int (*ManagerDomainAsyncOp)(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr);
/* Runs op on d now, or, while calls to d wait ahead of it or virtbusd is still connecting to d's QEMU
 * (found again at start-up), keeps it and runs it after them (returns 0: done follows, also with Timeout
 * when the connection does not come, or LimitsExceeded now when too many calls wait). Returns as op. */
int manager_domain_call_when_ready(Manager *m, Domain *d, ManagerDomainAsyncOp op, DomainWaitDone done,
                                   void *userdata, VbError *reterr);
/* Synchronous: they wait on the loop for definitions being committed (manager_define_settle). For
 * start-up, unit tests and internal callers; calls from clients use the two below. */
int manager_domain_undefine(Manager *m, Domain *d, VbError *reterr);
int manager_domain_rename(Manager *m, Domain *d, const char *name, VbError *reterr);
/* Rename, and Undefine with managed_save (its managed save goes too) and snapshots (their metadata goes):
 * done now (1), or, while the store commits definitions or calls to d wait ahead (domain-queue.c), kept
 * and done(r, e, userdata) later (0); < 0 with reterr on failure now (LimitsExceeded: too many wait). */
int manager_domain_rename_when_ready(Manager *m, Domain *d, const char *name, VbDriverDone done, void *userdata,
                                     VbError *reterr);
int manager_domain_undefine_when_ready(Manager *m, Domain *d, bool managed_save, bool snapshots, VbDriverDone done,
                                       void *userdata, VbError *reterr);
int manager_domain_set_autostart(Manager *m, Domain *d, bool autostart, VbError *reterr);
/* The same, with the link and its directory synced in the store thread: returns 1 when there was nothing
 * to change, 0 when done(…) will be called on the event loop (after the change is durable and Autostart
 * changed), < 0 with reterr set. */
typedef void (*DomainOpDone)(Manager *m, int r, const VbError *e, void *userdata);
int manager_domain_set_autostart_async(Manager *m, Domain *d, bool autostart, DomainOpDone done, void *userdata,
                                       VbError *reterr);

typedef enum DomainXMLFlags {
        DOMAIN_XML_INACTIVE = 1 << 0, /* the saved definition even while running */
        DOMAIN_XML_SECURE = 1 << 1,   /* include secrets */
} DomainXMLFlags;

int manager_domain_get_xml(Manager *m, Domain *d, unsigned flags, char **ret, VbError *reterr);

/* GetStats / GetAllDomainStats (domain-stats.c): the statistics of several domains at once. Each entry
 * gets state.* from core, the other groups (VB_STATS_GROUP_*; 0: all) from the driver for a running
 * domain, queried all at the same time, and from the saved definition (balloon, vcpu) for a shut-off one.
 * An entry whose driver did not answer within DOMAIN_STATS_TIMEOUT_USEC keeps state.* alone. */
#define DOMAIN_STATS_TIMEOUT_USEC (1000ULL * 1000ULL)
typedef struct DomainStatsQuery DomainStatsQuery;
typedef void (*DomainStatsDone)(DomainStatsQuery *q, void *userdata);
typedef struct DomainStatsEntry {
        DomainStatsQuery *query;
        char uuid[37]; /* the domain may be gone by the time the answer is complete */
        VbStats *stats;
        bool pending;
} DomainStatsEntry;
struct DomainStatsQuery {
        Manager *manager;
        DomainStatsEntry *entries;
        size_t n, n_pending;
        sd_event_source *timer;
        DomainStatsDone done;
        void *userdata;
};
/* Returns 1 with *ret complete (the caller frees it), 0 when done(*ret, userdata) follows from the event
 * loop (done frees it), < 0 on error. */
int manager_domains_get_stats(Manager *m, Domain * const *domains, size_t n, uint64_t groups,
                              DomainStatsDone done, void *userdata, DomainStatsQuery **ret);
DomainStatsQuery *domain_stats_query_free(DomainStatsQuery *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(DomainStatsQuery *, domain_stats_query_free);

/* InterfaceAddresses (domain-addresses.c): the addresses of a running domain's interfaces as one source
 * knows them; only interfaces with an address are listed. */
typedef enum DomainAddressSource {
        DOMAIN_ADDRESSES_LEASE = 0, /* DHCP leases of virtbus networks */
        DOMAIN_ADDRESSES_AGENT = 1, /* the guest agent */
        DOMAIN_ADDRESSES_ARP = 2,   /* the host's neighbour table */
} DomainAddressSource;
/* DomainIfAddresses: drivers/driver.h. */
/* Sources 0 and 2 answer at once (1 with *ret); source 1 asks the driver's agent: 1 with *ret when answered
 * now, 0 when done follows from the event loop. */
int manager_domain_interface_addresses(Manager *m, Domain *d, unsigned source, VbDriverAddressesDone done,
                                       void *userdata, DomainIfAddresses **ret, size_t *ret_n, VbError *reterr);

/* The guest agent (domain-agent.c). GetGuestInfo types, libvirt's bits: */
#define DOMAIN_GUEST_INFO_USERS UINT64_C(1)
#define DOMAIN_GUEST_INFO_OS UINT64_C(2)
#define DOMAIN_GUEST_INFO_TIMEZONE UINT64_C(4)
#define DOMAIN_GUEST_INFO_HOSTNAME UINT64_C(8)
#define DOMAIN_GUEST_INFO_FILESYSTEM UINT64_C(16)
#define DOMAIN_GUEST_INFO_ALL UINT64_C(31)
/* 1 with *ret when answered now, 0 when done follows (from the event loop). */
int manager_domain_guest_info(Manager *m, Domain *d, uint64_t types, VbDriverInfoDone done, void *userdata,
                              VbStats **ret, VbError *reterr);
/* Shutdown/Reboot flag 2: asks the agent; 1 done now, 0 when done follows once the agent was asked. */
int manager_domain_agent_power(Manager *m, Domain *d, bool reboot, VbDriverDone done, void *userdata, VbError *reterr);
/* GuestAgentConnected. */
bool domain_agent_connected(const Domain *d);

/* SetMemory / SetVCPUs (domain-tune.c). flags: DOMAIN_DEVICE_LIVE and/or DOMAIN_DEVICE_CONFIG; 0 = live
 * when running, else config. SetMemory sets <currentMemory> (the balloon's target live, at most
 * <memory>). */
/* Returns 1 when done, 0 when done(r, e, userdata) follows from the event loop (the balloon of a running
 * domain), < 0 when it failed (nothing changed). */
int manager_domain_set_memory(Manager *m, Domain *d, uint64_t kib, unsigned flags, VbDriverDone done, void *userdata,
                              VbError *reterr);
/* SetVCPUs: count vCPUs present (<vcpu current=>), live by hot-plug/unplug and/or in the saved definition;
 * maximum: <vcpu> itself (saved definition only). Returns 1 when done; 0 when done(r, e, userdata) follows
 * from the event loop (a live change the driver answers later). */
int manager_domain_set_vcpus(Manager *m, Domain *d, uint32_t count, unsigned flags, bool maximum,
                             VbDriverDone done, void *userdata, VbError *reterr);
/* The <currentMemory> of the current definition (<memory> when not given), in KiB. */
uint64_t domain_current_memory_kib(const Domain *d);

/* Loads the network registry (network-manager.c): saved and active networks, the driver's default
 * networks on a fresh state directory, autostart. */
int manager_network_load(Manager *m);
/* After the domains were found again: releases network ports of domains that no longer run. */
void manager_network_prune_ports(Manager *m);
/* Connects the <interface type='network'> of def (the domain with UUID owner, starting) to their
 * networks; *ret is a copy of def that shows what each uses (NULL when def has none); on failure
 * nothing stays connected. manager_domain_networks_release() undoes it. */
/* storage-manager.c: volume disks as the files of their volumes (a copy of def or dev, or NULL when
 * there is none); who uses a volume; Delete refused while a running domain does (DeviceBusy); the qemu
 * driver's pool 'default' at <state>/images, on the first start-up. */
int manager_domain_volumes_resolve(Manager *m, const DomainDef *def, uid_t owner, DomainDef **ret, VbError *reterr);
int manager_domain_volume_resolve_device(Manager *m, const DeviceDef *dev, uid_t owner, DeviceDef **ret,
                                         VbError *reterr);
const char *manager_storage_vol_user(Manager *m, const StorageVol *v);
int manager_storage_vol_delete(Manager *m, StorageVol *v, VbError *reterr);
int manager_storage_default_pool(Manager *m);

int manager_domain_networks_acquire(Manager *m, const char *owner, const DomainDef *def, DomainDef **ret,
                                    VbError *reterr);
void manager_domain_networks_release(Manager *m, const char *owner);
/* Releases the ports of owner whose interface (by MAC) live does not have: after a restart of virtbusd,
 * once the domain's QEMU was connected again (a cut hot-plug the driver undid). */
void manager_domain_network_ports_reconcile(Manager *m, const char *owner, const DomainDef *live);
/* The same for one interface hot-plugged into a running domain: 0 if dev is not on a network, 1 with *ret
 * a copy of dev showing what it uses; and its release when the guest let go of it. */
int manager_domain_network_acquire_device(Manager *m, const char *owner, const DeviceDef *dev, DeviceDef **ret,
                                          VbError *reterr);
void manager_domain_network_release_device(Manager *m, const char *owner, const DeviceDef *dev);

/* AttachDevice / DetachDevice / UpdateDevice (domain-device.c). flags: DOMAIN_DEVICE_LIVE and/or
 * DOMAIN_DEVICE_CONFIG; 0 = live when the domain runs, else config. Live on a stopped domain and config
 * on a transient one give InvalidState. Conflicts are refused before anything changes; the saved
 * definition is written before the driver is asked and written back if the driver fails. */
typedef enum DomainDeviceFlags {
        DOMAIN_DEVICE_LIVE = 1 << 0,
        DOMAIN_DEVICE_CONFIG = 1 << 1,
} DomainDeviceFlags;

/* dev gets an alias and guest address where missing. who (NULL: root) says whose rights open the device's
 * host paths: the caller's, and those an administrator allowed (conf/domain-paths.h). Returns 1 when done,
 * 0 when done(r, e, userdata) follows from the event loop (a running domain's hypervisor answers later;
 * the domain is busy meanwhile), < 0 when it failed: then, and when done gets r < 0, nothing changed. */
int manager_domain_attach_device(Manager *m, Domain *d, const DeviceDef *dev, const DomainAccess *who, unsigned flags,
                                 VbDriverDone done, void *userdata, VbError *reterr);
/* Returns 0 when done (config only, or the driver removed the device at once), 1 when the guest was asked
 * to release the device: done is called once, when it did (r = 0, the saved definition then changed too
 * if asked), refused (r < 0) or didn't within the removal timeout (-ETIMEDOUT, Timeout: nothing
 * changed, but a later release still updates the live definition and emits device_removed). */
int manager_domain_detach_device(Manager *m, Domain *d, const DeviceDef *probe, unsigned flags,
                                 DomainWaitDone done, void *userdata, VbError *reterr);
/* Answers as manager_domain_attach_device. */
int manager_domain_update_device(Manager *m, Domain *d, const DeviceDef *dev, const DomainAccess *who, unsigned flags,
                                 VbDriverDone done, void *userdata, VbError *reterr);

/* Whether giving dev to a domain hands it a device of the host (a hostdev, an interface type='hostdev',
 * an interface on a network whose forward mode is hostdev): then 1 and *ret_address names it for polkit
 * and the logs (see device_def_host_device; "network:<name>" for a network's pool); to free. */
int manager_device_assigns_host_device(Manager *m, const DeviceDef *dev, char **ret_address);
/* Is network a pool of host devices (<forward mode='hostdev'>)? The network registry answers. */
bool manager_network_forward_is_hostdev(Manager *m, const char *network);
