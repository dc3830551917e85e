/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "util/error.h"
#include "util/hashmap.h"
#include "util/stats.h"
#include "util/string-table.h"

typedef struct DomainDef DomainDef;
typedef struct DeviceDef DeviceDef;
typedef struct DomainCaps DomainCaps;
typedef struct DomainAccess DomainAccess;
typedef struct HostCaps HostCaps;
typedef struct SnapshotDef SnapshotDef;

/* What GetDomainCapabilities asks about (NULL or "": the default). */
typedef struct VbDomainCapsQuery {
        const char *emulator, *arch, *machine, *virttype;
} VbDomainCapsQuery;
typedef void (*VbDriverCapsReady)(void *userdata);
/* The answer of domain_get_stats that came later: stats (taken; what could be read, maybe partial; NULL
 * when nothing could). */
typedef void (*VbDriverStatsDone)(void *userdata, VbStats *stats);
/* An operation that waits for the hypervisor finished: r >= 0 done, r < 0 with e saying why. */
typedef void (*VbDriverOpDone)(int r, const VbError *e, void *userdata);
typedef struct VbDriverDomainInfo VbDriverDomainInfo;
/* A start finished: r >= 0 with info (its live definition taken by the callee), or r < 0 with e. */
typedef void (*VbDriverStartDone)(int r, const VbError *e, VbDriverDomainInfo *info, void *userdata);
/* A screenshot arrived (png, size) or failed (r < 0, e says why). */
/* An operation that was answered later finished: r < 0 with e saying why, or 0. */
typedef void (*VbDriverDone)(int r, const VbError *e, void *userdata);
/* GetGuestInfo answered later: r < 0 with e, or info (taken). */
typedef void (*VbDriverInfoDone)(int r, const VbError *e, VbStats *info, void *userdata);
/* The addresses of a domain's interfaces (InterfaceAddresses): one entry per interface. */
typedef struct DomainIpAddress {
        uint8_t family; /* 4 or 6 */
        char *address;
        unsigned prefix; /* 0: not known */
} DomainIpAddress;
typedef struct DomainIfAddresses {
        char *name; /* the host side's name (target dev), or the guest's own name (agent) */
        char mac[18]; /* "" when not known */
        uint8_t mac_bytes[6];
        DomainIpAddress *addrs;
        size_t n_addrs;
} DomainIfAddresses;
void domain_if_addresses_free(DomainIfAddresses *l, size_t n);
int domain_if_addresses_add(DomainIfAddresses *iface, uint8_t family, const char *address, unsigned prefix);
/* The guest agent's interfaces answered later: r < 0 with e, or l of n (taken). */
typedef void (*VbDriverAddressesDone)(int r, const VbError *e, DomainIfAddresses *l, size_t n, void *userdata);
typedef void (*VbDriverScreenshotDone)(int r, const void *png, size_t size, const VbError *e, void *userdata);
/* A descriptor is ready (fd, which done owns and must close) or the call failed (r < 0, fd -1, e says why). */
typedef void (*VbDriverFdDone)(int r, int fd, const VbError *e, void *userdata);
/* How far a long operation got: done of about total bytes (total may still grow). */
typedef void (*VbDriverProgress)(uint64_t done, uint64_t total, void *userdata);

/* Live migration (domain-migrate.c): how the outgoing stream goes, and how far it got. */
typedef struct VbMigrateParams {
        uint64_t max_downtime_ms; /* 0: the backend's default */
        uint64_t bandwidth_mib;   /* MiB/s; 0: no limit */
        bool auto_converge;
        /* copy-storage: the destination's NBD server ("tcp:ADDRESS:PORT") and its TLS pre-shared key (hex);
         * NULL: the disks are shared. */
        const char *nbd_uri, *nbd_key;
        /* postcopy: the destination pulls the pages the guest has not got yet once switched over
         * (migrate_postcopy, or by itself after postcopy_after passes over memory; 0: only when asked). */
        bool postcopy;
        uint64_t postcopy_after;
        uint64_t postcopy_bandwidth_mib; /* MiB/s for the pages sent after the switch; 0: no limit */
} VbMigrateParams;
typedef struct VbMigrationStats {
        uint64_t total_time_ms, downtime_ms, setup_time_ms;
        uint64_t transferred, remaining, total; /* RAM bytes */
        uint64_t dirty_rate, iterations, mbps;
        uint64_t disk_transferred, disk_total; /* copy-storage: bytes of the disks copied, of all */
        bool completed;
        bool postcopy; /* switched to postcopy */
} VbMigrationStats;
/* Called from the event loop while a migration runs, and once more when it completed. */
typedef void (*VbDriverMigrationStats)(const VbMigrationStats *stats, void *userdata);
/* copy-storage, destination: a disk to create (target as the definition names it, size in bytes). */
typedef struct VbMigrateDisk {
        const char *target;
        uint64_t size;
} VbMigrateDisk;
/* The disks are exported: key (hex) to give to the source. */
typedef void (*VbDriverExportDone)(int r, const char *key, const VbError *e, void *userdata);

/* A hypervisor backend. Every backend (the simulated "test" one, "qemu") implements the same ops
 * table; core/ only ever calls through it, and learns of changes the guest makes (it shut down,
 * crashed, rebooted) through VbDriverEvents. Requests that take a guest's cooperation (shutdown)
 * return once asked; completion arrives as an event. */
typedef struct VbDriver VbDriver;

typedef enum DomainState {
        DOMAIN_SHUTOFF,
        DOMAIN_RUNNING,
        DOMAIN_PAUSED,
        DOMAIN_SHUTDOWN, /* shutting down */
        DOMAIN_CRASHED,
        _DOMAIN_STATE_MAX,
        _DOMAIN_STATE_INVALID = -EINVAL,
} DomainState;

DECLARE_STRING_TABLE_LOOKUP(domain_state, DomainState);

/* Why a domain stopped running. */
typedef enum DomainStopReason {
        DOMAIN_STOP_SHUTDOWN,  /* the guest powered off */
        DOMAIN_STOP_DESTROYED, /* we killed it */
        DOMAIN_STOP_CRASHED,   /* the guest crashed (and on_crash said to stop it) */
        DOMAIN_STOP_FAILED,    /* the hypervisor went away */
        _DOMAIN_STOP_REASON_MAX,
        _DOMAIN_STOP_REASON_INVALID = -EINVAL,
} DomainStopReason;

DECLARE_STRING_TABLE_LOOKUP(domain_stop_reason, DomainStopReason);

typedef struct VbDriverEvents {
        /* The running domain with this UUID changed state on its own (paused by an error, resumed,
         * rebooted, shutting down). */
        void (*domain_state_changed)(void *userdata, const char *uuid, DomainState state);
        /* The domain is no longer running. */
        void (*domain_stopped)(void *userdata, const char *uuid, DomainStopReason reason);
        /* The guest released the device with this alias (after domain_detach_device; QEMU: the
         * DEVICE_DELETED event). Also when it happens late, after core stopped waiting. */
        void (*device_removed)(void *userdata, const char *uuid, const char *alias);
        /* The guest or the hypervisor refused to release it; reason is a sentence. */
        void (*device_removal_failed)(void *userdata, const char *uuid, const char *alias, const char *reason);
        /* The live device with this alias changed without a call of core's: a hot-plug (added) or an
         * update that a stop of the service cut short and the driver reconciled when it found the domain
         * again. Core takes the driver's live definition (domain_get_live). */
        void (*device_changed)(void *userdata, const char *uuid, const char *alias, bool added);
        /* The guest agent of the running domain connected or went away (GuestAgentConnected). */
        void (*agent_changed)(void *userdata, const char *uuid, bool connected);
        /* A snapshot operation the backend runs for the domain got on: done of total units (the last one
         * tells done == total), a few times a second at most. */
        void (*domain_progress)(void *userdata, const char *uuid, uint64_t done, uint64_t total);
        /* The driver's connection to a domain listed with .connecting is made, or failed (then calls to it
         * answer why): calls may go to it now. */
        void (*domain_connected)(void *userdata, const char *uuid);
        void *userdata;
} VbDriverEvents;

typedef struct VbDriverConfig {
        sd_event *event;
        const char *state_dir;
        const char *runtime_dir;
        const char *sysfs_root;
        VbDriverEvents events;
} VbDriverConfig;

/* What the driver says about a domain it runs, at start-up (reconnection) and after Start. */
struct VbDriverDomainInfo {
        char uuid[37];
        unsigned id;
        DomainState state;
        DomainDef *live; /* the live definition (owned by the caller once returned) */
        /* Found again at start-up, and the driver is still connecting to it: calls to it would fail;
         * VbDriverEvents.domain_connected follows. */
        bool connecting;
};

typedef struct VbDriverOps {
        const char *name;
        size_t priv_size;
        /* Prepare the backend; fails with a sentence when the host can't run it. */
        int (*open)(VbDriver *drv, const VbDriverConfig *cfg, VbError *reterr);
        void (*close)(VbDriver *drv);

        /* Definitions this host has out of the box (the test driver's "test" domain), as XML,
         * NULL-terminated; core defines them once, on a fresh state directory. */
        const char * const *(*default_domains)(VbDriver *drv);
        /* The same for virtual networks (the test driver's active NAT network "default"). */
        const char * const *(*default_networks)(VbDriver *drv);
        /* Domains running now (e.g. found again after a restart of virtbusd). Fills *ret with an array
         * the caller frees (and the live definitions in it). */
        int (*domain_list_running)(VbDriver *drv, VbDriverDomainInfo **ret, size_t *ret_n, VbError *reterr);

        /* Lifecycle. def is the definition to run; uuid names a running domain. access says with whose
         * rights the host paths of def are opened (conf/domain-paths.h): a backend that uses host files
         * opens them so (host/user-open.h), never by path in the hypervisor.
         *
         * The ops that wait for the hypervisor (start, shutdown, reboot, reset, suspend, resume) never wait
         * on the event loop. Each returns 1 when done now (start: *ret filled), < 0 when it failed now
         * (reterr), or 0 when the answer comes later: done(userdata) then follows exactly once, from the
         * event loop, within a bounded time (a hypervisor that does not answer: Timeout; one that went
         * away: OperationFailed), also when the domain stops meanwhile. core sends one such op per domain
         * at a time. A domain whose start is pending is not running yet: it is not in domain_list_running
         * and the other ops answer InvalidState; if its hypervisor dies, the start fails (no
         * domain_stopped event follows). */
        int (*domain_start)(VbDriver *drv, const DomainDef *def, const DomainAccess *access, bool paused,
                            VbDriverStartDone done, void *userdata, VbDriverDomainInfo *ret, VbError *reterr);
        /* Ends the domain's hypervisor at once (no guest cooperation). With done NULL it waits for it to
         * end (bounded; for core's own clean-ups); else 1 when it ended now, 0 when done follows once it
         * did (QEMU: SIGTERM, SIGKILL after a grace, from a timer), < 0 when it failed. */
        int (*domain_destroy)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);
        int (*domain_shutdown)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);
        int (*domain_reboot)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);
        int (*domain_reset)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);
        int (*domain_suspend)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);
        int (*domain_resume)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);
        /* The current live definition of a running domain (caller frees). */
        int (*domain_get_live)(VbDriver *drv, const char *uuid, DomainDef **ret, VbError *reterr);
        /* Optional: the saved definition def of a shut-off domain was removed (Undefine); the backend
         * drops what it kept for the domain (qemu: the NVRAM store it made). Failures are only logged. */
        void (*domain_undefined)(VbDriver *drv, const DomainDef *def);
        /* Optional: whether path is one the backend made and keeps for this domain itself (qemu: its own
         * NVRAM store), which the service opens with its own rights whoever the owner is. */
        bool (*domain_path_is_own)(VbDriver *drv, const DomainDef *def, const char *path);

        /* Device hotplug on a running domain (AttachDevice / DetachDevice / UpdateDevice). core has checked
         * the device against the live definition and given it its alias and guest address (dev->alias,
         * dev->address): the driver plugs it in exactly there (QEMU: device_add with id = alias and
         * bus/addr from the address) and keeps its own copy of the live definition in step. Failing
         * changes nothing. They never wait on the event loop: 1 when done now, < 0 when failed now
         * (reterr), 0 when done(r, e, userdata) follows exactly once from the event loop, within a bounded
         * time (Timeout), also when the domain stops meanwhile. core sends one at a time per domain. */
        int (*domain_attach_device)(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                                    VbDriverDone done, void *userdata, VbError *reterr);
        /* Asks the guest to release the device with this alias (QEMU: device_del). Returns 1 if the device
         * is already gone (no guest cooperation needed; no event follows), 2 when the guest was asked now,
         * 0 when done(r, e, userdata) follows once from the event loop saying whether the hypervisor took
         * the request (r < 0: it refused or did not answer in time; no event follows then). Once asked,
         * the outcome arrives as events.device_removed or events.device_removal_failed, possibly never (a
         * guest that ignores the request: core gives up waiting after a bounded time, and a late
         * device_removed is still welcome); it may arrive before done. Asking again is fine. */
        int (*domain_detach_device)(VbDriver *drv, const char *uuid, const char *alias, VbDriverDone done,
                                    void *userdata, VbError *reterr);
        /* Changes the device with dev->alias (graphics, which have none: the one of dev's type) in place: a
         * cdrom/floppy medium (QEMU: blockdev-change-medium or eject), an interface's link state (set_link)
         * or bandwidth, graphics passwords. core has checked that only such things differ. Answers as
         * domain_attach_device. */
        int (*domain_update_device)(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                                    VbDriverDone done, void *userdata, VbError *reterr);

        /* Consoles and displays of a running domain (OpenConsole, OpenGraphics, Screenshot). The
         * descriptors returned are the caller's; the backend never reads or writes what goes through them.
         * Optional; unknown devices fail with NoSuchDevice, devices that cannot be handed out so with
         * NotSupported naming the reason. All three answer through done: a return < 0 means done is never
         * called; 0 means done is called exactly once, from the event loop, maybe before the op returns. */
        /* A stream to the serial port or console with alias device ("" or NULL: the first console). A
         * console someone holds fails with DeviceBusy, unless force: then the holder sees end-of-file.
         * access: whose rights reach a socket the definition names (as when the domain started). */
        int (*domain_open_console)(VbDriver *drv, const char *uuid, const DomainAccess *access, const char *device,
                                   bool force, VbDriverFdDone done, void *userdata, VbError *reterr);
        /* A stream socket connected to the display server of <graphics> number index; skip_auth: the
         * display's password is not asked. */
        int (*domain_open_graphics)(VbDriver *drv, const char *uuid, unsigned index, bool skip_auth,
                                    VbDriverFdDone done, void *userdata, VbError *reterr);
        /* A PNG image of screen number screen, delivered to done (from the event loop, exactly once, unless
         * this fails): done gets r < 0 and e on failure, or the image. */
        int (*domain_screenshot)(VbDriver *drv, const char *uuid, unsigned screen, VbDriverScreenshotDone done,
                                 void *userdata, VbError *reterr);

        /* Capabilities (GetDomainCapabilities, GetCapabilities, and core's checks of definitions). Both
         * return 1 with *ret (a reference) when answered now; 0 when the driver is finding out (probing an
         * emulator): ready(userdata) follows from the event loop, then ask again; with ready NULL the
         * driver waits instead (bounded) and answers. In q, NULL or "" means the default (host arch, its
         * emulator, its default machine, kvm when usable else qemu); an alias machine is resolved. Unknown
         * names fail with InvalidArgument naming what exists. */
        int (*domain_capabilities)(VbDriver *drv, const VbDomainCapsQuery *q, VbDriverCapsReady ready,
                                   void *userdata, DomainCaps **ret, VbError *reterr);
        /* GetCapabilities: caps holds the host part core read (arch, CPU, NUMA, IOMMU); the driver adds
         * its guests (each arch with emulator, machines, domain types) when it returns 1. */
        int (*capabilities)(VbDriver *drv, HostCaps *caps, VbDriverCapsReady ready, void *userdata,
                            VbError *reterr);
        /* Forgets the ready callbacks with this userdata (a caller went away). */
        void (*capabilities_cancel)(VbDriver *drv, void *userdata);

        /* Statistics of a running domain (GetStats), in groups (VB_STATS_GROUP_* of util/stats.h; core
         * adds the state group itself) with libvirt's keys and types. Returns 1 with *ret when answered
         * now; 0 when the answer comes later: done(userdata, stats) then follows once, from the event
         * loop, also when the domain stops meanwhile (with what was read), unless domain_stats_cancel()
         * with that userdata came first. Never waits for the hypervisor. */
        int (*domain_get_stats)(VbDriver *drv, const char *uuid, uint64_t groups, VbDriverStatsDone done,
                                void *userdata, VbStats **ret, VbError *reterr);
        void (*domain_stats_cancel)(VbDriver *drv, void *userdata);
        /* SetMemory on a running domain: the balloon's target in KiB (core checked it against the live
         * <memory>). The driver keeps its live definition's <currentMemory> in step. Answers as
         * domain_attach_device (1 now, 0 done follows, < 0 failed). */
        int (*domain_set_memory)(VbDriver *drv, const char *uuid, uint64_t kib, VbDriverDone done, void *userdata,
                                 VbError *reterr);
        /* SetVCPUs on a running domain: count vCPUs (core checked 1 <= count <= the live <vcpu>). Returns 1
         * when done now; 0 when done(r, e, userdata) follows once from the event loop (also when the domain
         * stops meanwhile: r < 0). The driver keeps its live definition's <vcpu current=> in step. Optional. */
        int (*domain_set_vcpus)(VbDriver *drv, const char *uuid, uint32_t count, VbDriverDone done, void *userdata,
                                VbError *reterr);

        /* The guest agent. Optional. guest_info (GetGuestInfo): the groups of types (DOMAIN_GUEST_INFO_*
         * bits of core) with libvirt's keys; returns 1 with *ret when answered now, 0 when done follows once
         * from the event loop (r < 0: Timeout when the agent did not answer in time). Without an agent,
         * or with one not connected: NotSupported at once. agent_shutdown asks the agent to power the guest
         * off (or reboot it): 1 done now, 0 done follows once it was asked. agent_connected: whether an
         * agent is connected now. */
        int (*domain_guest_info)(VbDriver *drv, const char *uuid, uint64_t types, VbDriverInfoDone done,
                                 void *userdata, VbStats **ret, VbError *reterr);
        int (*domain_agent_shutdown)(VbDriver *drv, const char *uuid, bool reboot, VbDriverDone done, void *userdata,
                                     VbError *reterr);
        bool (*domain_agent_connected)(VbDriver *drv, const char *uuid);
        /* InterfaceAddresses source 1: the guest's interfaces as its agent lists them (guest-network-get-
         * interfaces; the loopback left out), with their guest-side names, MACs and addresses; an interface
         * without an address is listed too. 1 with *ret and *ret_n when answered now, 0 when done follows once
         * from the event loop; NotSupported/Timeout as guest_info. */
        int (*domain_agent_interfaces)(VbDriver *drv, const char *uuid, VbDriverAddressesDone done, void *userdata,
                                       DomainIfAddresses **ret, size_t *ret_n, VbError *reterr);

        /* Snapshots (Domain.CreateSnapshot, DomainSnapshot.Revert/Delete). Optional: absent, core answers
         * NotSupported. def is the domain's current definition, running whether it runs now; snap the
         * snapshot (named, with its state filled in). create takes what snap says of disks and memory;
         * revert puts the disks (and, for a snapshot of a running domain, the guest's state) back, with the
         * domain stopped by core first unless running (then the backend reverts it live or refuses);
         * delete drops what the backend keeps for the snapshot. They work off the event loop: returning 0,
         * done(userdata) follows exactly once from the event loop (also when the domain stops meanwhile);
         * returning < 0 they failed at once and done never comes. def, snap and access are needed only
         * until the op returns. Failing changes nothing. */
        int (*domain_snapshot_create)(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                                      const DomainAccess *access, VbDriverOpDone done, void *userdata,
                                      VbError *reterr);
        int (*domain_snapshot_revert)(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                                      const DomainAccess *access, VbDriverOpDone done, void *userdata,
                                      VbError *reterr);
        int (*domain_snapshot_delete)(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                                      const DomainAccess *access, VbDriverOpDone done, void *userdata,
                                      VbError *reterr);
        /* The overlay file at path of a disk-only snapshot, left by a merge that a stop of the service cut
         * short after its disk had moved onto the image below (below, the disk's image now): removed, off
         * the event loop, through its directory opened with the rights of whoever opens it (access), and
         * only if it still is an image whose header names below as its backing file. Best effort (logged).
         * Optional. */
        void (*domain_snapshot_overlay_forget)(VbDriver *drv, const char *path, const char *below,
                                               const DomainAccess *access);

        /* Saved state (Domain.Save, ManagedSave, Start after ManagedSave, Manager.RestoreDomain). Optional.
         * They work off the event loop as the snapshot ops do (0: done follows once from the event loop;
         * < 0: failed at once). progress (may be NULL) is called from the event loop meanwhile.
         * save_state writes the running domain's whole state into fd (a pipe or a file, from its current
         * position); the guest is paused then, and core destroys it once done.
         * expect_incoming (expect false: no longer): the next domain_start of this domain does not boot it
         * but waits, paused, for its state from load_state (QEMU: -incoming defer), which reads it from fd;
         * it stays paused. fd stays the caller's: a backend that needs it after returning takes a copy. */
        int (*domain_save_state)(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress,
                                 VbDriverOpDone done, void *userdata, VbError *reterr);
        int (*domain_expect_incoming)(VbDriver *drv, const char *uuid, bool expect, VbError *reterr);
        int (*domain_load_state)(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress,
                                 VbDriverOpDone done, void *userdata, VbError *reterr);

        /* Live migration, source side (Domain.MigrateTo). Optional. migrate_out sends the running domain's
         * state into fd (a connected stream to the destination's incoming domain, which reads it with
         * load_state) while the guest keeps running; at the end the guest is paused (QEMU: postmigrate)
         * and stays so: core then destroys it, or resumes it (domain_resume) when the destination failed.
         * Works off the event loop as save_state; stats (may be NULL) follows it meanwhile and once at the
         * end. migrate_cancel asks a running migrate_out to stop: its done then says it failed, and the
         * guest keeps running. fd stays the caller's. */
        int (*domain_migrate_out)(VbDriver *drv, const char *uuid, int fd, const VbMigrateParams *params,
                                  VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr);
        int (*domain_migrate_cancel)(VbDriver *drv, const char *uuid, VbError *reterr);

        /* copy-storage, destination side. Optional. disks_create makes the image files of the named disks
         * of def (same format as def says, the given size), each created with the rights of whoever opens
         * it (access), refused when one exists; off the event loop, done follows once; on failure nothing
         * created is left. disks_export, once the domain runs paused waiting for its state: an NBD server
         * on listen_fd (a listening TCP socket, taken) admitting only clients holding a new random key
         * (TLS-PSK), exporting those disks writable under their target names. disks_end: the server and exports go
         * (when QEMU still runs), and with remove the created files too; forgets them. */
        int (*domain_disks_create)(VbDriver *drv, const DomainDef *def, const DomainAccess *access,
                                   const VbMigrateDisk *disks, size_t n, VbDriverOpDone done, void *userdata,
                                   VbError *reterr);
        int (*domain_disks_export)(VbDriver *drv, const char *uuid, int listen_fd, VbDriverExportDone done,
                                   void *userdata, VbError *reterr);
        void (*domain_disks_end)(VbDriver *drv, const char *uuid, bool remove);

        /* postcopy. Optional. incoming_postcopy: the incoming domain (started, waiting) accepts a migration
         * that switches to postcopy (QEMU: postcopy-ram); done once, failing with the hypervisor's reason.
         * migrate_postcopy: a running migrate_out (with params->postcopy) switches now. */
        int (*domain_incoming_postcopy)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata,
                                        VbError *reterr);
        int (*domain_migrate_postcopy)(VbDriver *drv, const char *uuid, VbError *reterr);
} VbDriverOps;

struct VbDriver {
        const VbDriverOps *ops;
        VbDriverConfig cfg;
        char *state_dir;
        char *runtime_dir;
        void *priv;
};

const VbDriverOps *vb_driver_ops_find(const char *name);
/* The names of all backends, NULL-terminated, for --help and error messages. */
const char * const *vb_driver_names(void);

int vb_driver_open(const char *name, const VbDriverConfig *cfg, VbDriver **ret, VbError *reterr);
VbDriver *vb_driver_close(VbDriver *drv);
const char *vb_driver_name(const VbDriver *drv);

/* Fails with NotSupported naming the operation when the backend lacks it. */
int vb_driver_not_supported(const VbDriver *drv, const char *what, VbError *reterr);

void vb_driver_domain_info_done(VbDriverDomainInfo *info);
/* Fills info with a copy of live. */
int vb_driver_domain_info_set(VbDriverDomainInfo *info, const char *uuid, unsigned id, DomainState state,
                              const DomainDef *live);
/* domain_list_running for a backend that keeps its running domains in a Hashmap: describe() fills the
 * info of one and returns 1, or returns 0 to leave it out (not running yet). */
int vb_driver_list_running_from(Hashmap *domains, int (*describe)(void *domain, VbDriverDomainInfo *ret),
                                VbDriverDomainInfo **ret, size_t *ret_n);

extern const VbDriverOps vb_test_driver_ops;
extern const VbDriverOps vb_qemu_driver_ops;
