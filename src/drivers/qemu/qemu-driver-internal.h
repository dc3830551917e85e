/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between qemu-driver.c and qemu-hotplug.c. */
#include "drivers/qemu/qemu-process.h"
#include "util/hashmap.h"

typedef struct QemuStatsRound QemuStatsRound;
typedef struct QemuConsoleOp QemuConsoleOp;
typedef struct QemuShotFile QemuShotFile;
struct Worker;
typedef struct QemuVcpusCall QemuVcpusCall;
typedef struct QemuSnapJob QemuSnapJob;
typedef struct QemuDiskSnapJob QemuDiskSnapJob;
typedef struct QemuMergeJob QemuMergeJob;
typedef struct QemuSaveJob QemuSaveJob;
typedef struct QemuNbdIn QemuNbdIn;
typedef struct QemuMirror QemuMirror;

typedef struct QemuDriver {
        VbDriver *drv;
        QemuVmConfig vm_cfg;
        char *runtime_dir, *log_dir;
        char *nvram_dir; /* <state>/qemu/nvram: the UEFI variable stores we make (qemu-firmware.c) */
        bool kvm_usable;
        Hashmap *vms; /* uuid -> QemuVm */
        unsigned next_id;
        struct QemuCapsDriver *caps; /* capabilities (qemu-caps-driver.c) */
        HostConfinement confinement; /* as root: QEMU's user and hidden directories (host/process.h) */
        const char *hide[2 + 16];
        QemuStatsRound *stats_rounds; /* GetStats' queries on their way to QEMU (qemu-stats.c) */
        QemuConsoleOp *console_ops;   /* OpenConsole/OpenGraphics/Screenshot under way (qemu-console.c) */
        struct Worker *console_worker; /* encodes screenshots (qemu-console.c) */
        QemuShotFile *shot_files;      /* what QEMUs write screenshots into (qemu-console.c) */
        QemuVcpusCall *vcpus_calls; /* SetVCPUs waiting for QEMU (qemu-vcpus.c) */
        QemuSnapJob *snap_jobs; /* snapshot operations in flight (qemu-snapshot.c) */
        struct Worker *snap_worker;    /* the thread that runs qemu-img for them */
        struct Worker *start_worker;   /* the host's part of Start, before QEMU runs (qemu-process.c) */
        QemuDiskSnapJob *disk_snap_jobs; /* disk-only snapshots in flight (qemu-snapshot-disk.c) */
        QemuMergeJob *merge_jobs;       /* disk-only snapshots being merged away (qemu-snapshot-merge.c) */
        QemuSaveJob *save_jobs; /* saves and restores of state in flight (qemu-save.c) */
        char **incoming;        /* UUIDs whose next start waits for a saved state (qemu-save.c) */
        size_t n_incoming;
        QemuNbdIn *nbd_in;      /* copy-storage in: disks created and exported (qemu-nbd-in.c) */
        QemuMirror *mirrors;    /* copy-storage out: disks mirrored to a destination (qemu-migrate.c) */
} QemuDriver;

/* The user QEMU runs as when virtbusd is root ($VIRTBUS_QEMU_USER overrides it). */
#define QEMU_USER_DEFAULT "virtbus-qemu"

QemuVm *qemu_driver_find_vm(QemuDriver *q, const char *uuid, VbError *reterr);
/* A DEVICE_DELETED event for the device with this id (NULL: a sub-object, ignored). */
void qemu_driver_device_deleted(QemuDriver *q, QemuVm *vm, const char *device);

/* A QEMU found again at start-up, with QEMU's /machine/peripheral (qom-list's answer) and descriptor sets
 * (query-fdsets'): a hot-plug that a stop of virtbusd cut short is finished (QEMU has the device: it joins
 * the live definition) or undone (what it had added goes), and NICs QEMU has but the live definition
 * does not are removed (qemu-hotplug.c). */
void qemu_hotplug_reconcile(QemuDriver *q, QemuVm *vm, struct json_object *peripherals, struct json_object *fdsets,
                            struct json_object *blocks);

/* The hotplug ops (qemu-hotplug.c). */
int qemu_attach_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                       VbDriverDone done, void *userdata, VbError *reterr);
int qemu_detach_device(VbDriver *drv, const char *uuid, const char *alias, VbDriverDone done, void *userdata,
                       VbError *reterr);
int qemu_update_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                       VbDriverDone done, void *userdata, VbError *reterr);

/* Statistics and the balloon (qemu-stats.c). */
int qemu_get_stats(VbDriver *drv, const char *uuid, uint64_t groups, VbDriverStatsDone done, void *userdata,
                   VbStats **ret, VbError *reterr);
void qemu_stats_cancel(VbDriver *drv, void *userdata);
/* An event of vm's QEMU, for what qemu-stats.c keeps. */
void qemu_stats_event(QemuVm *vm, const char *name);
/* How long after a BALLOON_CHANGE the balloon's size is asked again each time: QEMU 7.2 holds back the
 * events that follow one within a second, sending the last when the second is over; the rest is margin. */
#define QEMU_STATS_BALLOON_HOLD_USEC (1500 * 1000ULL)
int qemu_set_memory(VbDriver *drv, const char *uuid, uint64_t kib, VbDriverDone done, void *userdata,
                    VbError *reterr);
/* qemu-snapshot.c: internal snapshots of qcow2 disks (qemu-img snapshot when stopped, QMP jobs when running). */
int qemu_snapshot_create(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbDriverOpDone done, void *userdata, VbError *reterr);
int qemu_snapshot_revert(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbDriverOpDone done, void *userdata, VbError *reterr);
int qemu_snapshot_delete(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbDriverOpDone done, void *userdata, VbError *reterr);
/* The one thread that runs qemu-img and opens images for the snapshot, merge and copy-storage jobs, started
 * on first use (freed at close). */
int qemu_snap_worker_start(QemuDriver *q);
/* A JOB_STATUS_CHANGE event of this VM. */
void qemu_snapshot_job_event(QemuDriver *q, QemuVm *vm, struct json_object *data);
/* The VM stopped: its snapshot jobs fail. */
void qemu_snapshots_abort(QemuDriver *q, const char *uuid);
/* The driver closes: jobs end without telling anyone. */
void qemu_snapshots_close(QemuDriver *q);
/* qemu-snapshot-disk.c: a disk-only snapshot (new qcow2 overlays; on a running domain put over its disks
 * with blockdev-snapshot in one transaction), as the snapshot create op; its jobs dropped at close. */
int qemu_snapshot_disk_only(QemuDriver *q, const DomainDef *def, bool running, const SnapshotDef *snap,
                            const DomainAccess *access, VbDriverOpDone done, void *userdata, VbError *reterr);
void qemu_snapshot_disk_close(QemuDriver *q);
/* Deleting a disk-only snapshot: its overlays merged into the images below them, then removed
 * (qemu-snapshot-merge.c); as the delete op. */
int qemu_snapshot_merge(QemuDriver *q, const DomainDef *def, bool running, const SnapshotDef *snap,
                        const DomainAccess *access, VbDriverOpDone done, void *userdata, VbError *reterr);
void qemu_snapshot_merge_close(QemuDriver *q);
/* Found again after a restart of the service: merge jobs left in QEMU are settled (qemu-snapshot-merge.c). */
void qemu_snapshot_merge_reconnected(QemuDriver *q, QemuVm *vm);
void qemu_snapshot_overlay_forget(VbDriver *drv, const char *path, const char *below, const DomainAccess *access);
/* query-block's entry for the device with this alias (qemu-hotplug.c). */
struct json_object *qemu_block_of(struct json_object *blocks, const char *alias);
/* A JOB_STATUS_CHANGE event of this VM: a merge's job moved (its next query goes at once). */
void qemu_snapshot_merge_job_event(QemuDriver *q, QemuVm *vm, struct json_object *data);
/* qemu-save.c: the guest's state to and from a descriptor (QMP migrate to "fd:", migrate-incoming). */
int qemu_save_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr);
int qemu_expect_incoming(VbDriver *drv, const char *uuid, bool expect, VbError *reterr);
/* A MIGRATION event of this VM: its save, restore or migration job asks QEMU at once. */
void qemu_save_job_event(QemuDriver *q, QemuVm *vm, struct json_object *data);
int qemu_load_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr);
/* Hands fd to QEMU as name and sends command (migrate, migrate-incoming) with uri "fd:name"; the job
 * follows it with query-migrate (progress, stats: may be NULL) until done. what names it in messages. */
int qemu_save_job_start(QemuDriver *q, const char *uuid, const char *what, int fd, const char *name,
                        const char *command, VbDriverProgress progress, VbDriverMigrationStats stats,
                        VbDriverOpDone done, void *userdata, VbError *reterr);
/* qemu-migrate.c: live migration out (QMP migrate to the descriptor, the guest running). */
int qemu_migrate_out(VbDriver *drv, const char *uuid, int fd, const VbMigrateParams *params,
                     VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr);
int qemu_migrate_cancel(VbDriver *drv, const char *uuid, VbError *reterr);
int qemu_migrate_postcopy(VbDriver *drv, const char *uuid, VbError *reterr);
int qemu_incoming_postcopy(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);
/* qemu-save.c: a sending job switches to postcopy once QEMU made n passes over memory; or now (false: no
 * such job). */
void qemu_save_job_postcopy_after(QemuDriver *q, const char *uuid, uint64_t n);
bool qemu_save_job_postcopy_now(QemuDriver *q, const char *uuid);
/* Whether the start of this domain waits for a saved state (asked once: the mark goes). */
bool qemu_save_take_incoming(QemuDriver *q, const char *uuid);
void qemu_saves_abort(QemuDriver *q, const char *uuid);
void qemu_saves_close(QemuDriver *q);
/* The VM goes away: its waiting calls are answered (answer) with what they have, or dropped. */
void qemu_stats_forget_vm(QemuDriver *q, QemuVm *vm, bool answer);
/* Consoles, displays, screenshots (qemu-console.c). */
int qemu_open_console(VbDriver *drv, const char *uuid, const DomainAccess *access, const char *device, bool force,
                      VbDriverFdDone done, void *userdata, VbError *reterr);
int qemu_open_graphics(VbDriver *drv, const char *uuid, unsigned index, bool skip_auth, VbDriverFdDone done,
                       void *userdata, VbError *reterr);
int qemu_screenshot(VbDriver *drv, const char *uuid, unsigned screen, VbDriverScreenshotDone done, void *userdata,
                    VbError *reterr);
/* What is under way for this domain fails (it stopped). */
void qemu_console_abort(QemuDriver *q, const char *uuid);
/* virtbusd stops: everything under way is dropped. */
void qemu_console_close(QemuDriver *q);
/* SetVCPUs live (qemu-vcpus.c): vCPU hot-plug and unplug. */
int qemu_set_vcpus(VbDriver *drv, const char *uuid, uint32_t count, VbDriverDone done, void *userdata,
                   VbError *reterr);
/* The vCPU changes of this domain fail (it stopped). */
void qemu_vcpus_abort(QemuDriver *q, const char *uuid);
/* The guest agent (qemu-guest.c). */
int qemu_guest_info(VbDriver *drv, const char *uuid, uint64_t types, VbDriverInfoDone done, void *userdata,
                    VbStats **ret, VbError *reterr);
int qemu_agent_shutdown(VbDriver *drv, const char *uuid, bool reboot, VbDriverDone done, void *userdata,
                        VbError *reterr);
bool qemu_agent_connected(VbDriver *drv, const char *uuid);
/* guest-network-get-interfaces' answer (an array of GuestNetworkInterface) as InterfaceAddresses lists it:
 * the loopback "lo" left out, "ipv4"/"ipv6" as 4/6, addresses of another type skipped. */
int qemu_agent_interfaces_parse(struct json_object *list, DomainIfAddresses **ret, size_t *ret_n);
int qemu_agent_interfaces(VbDriver *drv, const char *uuid, VbDriverAddressesDone done, void *userdata,
                          DomainIfAddresses **ret, size_t *ret_n, VbError *reterr);
/* After a restart of virtbusd: connects to the guest agent's socket of a running domain found again, and
 * asks QEMU (asynchronously) whether the guest's agent has its port open. */
void qemu_guest_reattach(QemuVm *vm);
/* VSERPORT_CHANGE: the guest opened or closed the virtio-serial port with this id. */
void qemu_guest_port_changed(QemuDriver *q, QemuVm *vm, const char *id, bool open);
/* The driver closes: the waiting changes are dropped unanswered. */
void qemu_vcpus_drop(QemuDriver *q);
