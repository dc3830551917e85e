/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "conf/domain-conf.h"
#include "drivers/driver.h"
#include "drivers/qemu/qemu-agent.h"
#include "drivers/qemu/qemu-files.h"
#include "drivers/qemu/qemu-monitor.h"
#include "host/process.h"
#include "util/error.h"

/* One QEMU process running one domain, and the files that let a restarted virtbusd find it again:
 *   <runtime>/qemu/<uuid>.sock   the QMP socket (QEMU holds the listening end)
 *   <runtime>/qemu/<uuid>.state  pid, its start time, the domain id
 *   <runtime>/qemu/<uuid>.xml    the live definition
 *   <state>/qemu/log/<name>.log  QEMU's output, with our command lines, per domain */
typedef struct QemuVm QemuVm;
typedef struct QemuSeq QemuSeq;
typedef struct QemuVmStart QemuVmStart;
typedef struct QemuStatsCache QemuStatsCache;

/* How long a QEMU may take to open its monitor, and to answer a list of commands (qemu-sequence.h):
 * then the caller hears Timeout. $VIRTBUS_QEMU_TIMEOUT_MS sets the second (the tests of hung QEMUs). */
#define QEMU_MONITOR_TIMEOUT_USEC (30 * 1000 * 1000ULL)
#define QEMU_COMMAND_TIMEOUT_USEC (10 * 1000 * 1000ULL)

typedef struct QemuVmCallbacks {
        void (*event)(QemuVm *vm, const char *name, struct json_object *data, void *userdata);
        /* The process exited (it is reaped already). */
        void (*exited)(QemuVm *vm, void *userdata);
} QemuVmCallbacks;

typedef void (*QemuVmReconnected)(QemuVm *vm, int r, const char *error, DomainState state,
                                  struct json_object *peripherals, struct json_object *fdsets,
                                  struct json_object *blocks, void *userdata);

typedef struct QemuVmConfig {
        sd_event *event;
        const char *emulator;
        /* How every QEMU is shut in (host/process.h): its user, the directories it does not see. NULL
         * (an unprivileged virtbusd, --user) runs it as ourselves. The device nodes are each VM's own. */
        const HostConfinement *confinement;
        const char *runtime_dir; /* <runtime>/qemu */
        const char *log_dir;     /* <state>/qemu/log */
        bool kvm_usable;
        uint64_t command_timeout_usec;
        /* Start with -incoming defer: the guest's state comes later by migrate-incoming (qemu-save.c). */
        bool incoming_defer;
        QemuVmCallbacks cb;
        void *userdata;
} QemuVmConfig;

struct QemuVm {
        QemuVmConfig cfg;
        char uuid[37];
        unsigned id;
        pid_t pid;
        uint64_t start_time;
        int pidfd;
        sd_event_source *pid_source;
        QemuMonitor *mon;
        QemuSeq *seqs;        /* command lists running on mon (qemu-sequence.h) */
        QemuVmStart *start;   /* while it starts: the start in progress */
        bool exited;          /* its process exited (reaped) */
        DomainDef *live;
        DomainState state;
        char **macvtaps;    /* the macvtaps made for type='direct' interfaces, deleted with the VM */
        size_t n_macvtaps, n_macvtaps_allocated;
        char *log_path;
        long log_offset; /* where this run's QEMU output begins */
        unsigned next_fdset; /* the next free -add-fd set (hot-plug adds sets past those of the start) */
        unsigned merge_orphans; /* merge jobs a stop of the service left, being cancelled (qemu-snapshot-merge.c) */
        QemuAgent *agent;   /* the guest agent's channel, NULL without one */
        char *agent_alias;  /* its channel's alias (VSERPORT_CHANGE names it) */
        QemuStatsCache *stats_cache; /* what GetStats keeps of QEMU's answers (qemu-stats.c) */
        /* Lifecycle bookkeeping of the driver. */
        bool destroying;    /* we are killing it: its exit is expected */
        bool shutdown_seen; /* the guest powered off (SHUTDOWN event) */
        bool crashed;       /* GUEST_PANICKED */
        bool reboot_requested; /* a Reboot request: the next SHUTDOWN follows <on_reboot> */
        bool stop_requested;   /* a lifecycle action is ending the process */
        bool restarting;       /* a lifecycle action reset the guest: the STOP before its RESUME is no pause */
        /* qemu_vm_terminate_async under way: SIGKILL when kill_timer fires; gone when the process exited. */
        sd_event_source *kill_timer;
        bool kill_sent;
        void (*gone)(QemuVm *vm, int r, void *userdata);
        void *gone_userdata;
        /* qemu_vm_reconnect under way (connecting), or failed (connect_error: calls fail, Destroy works). */
        bool connecting;
        char *connect_error;
        QemuVmReconnected reconnected;
        void *reconnected_userdata;
        void *priv;         /* the driver's */
};

/* Connects vm->agent to the socket QEMU listens on for the guest agent's channel (alias: the channel's),
 * after the start and after a restart of virtbusd; 0 without such a channel, 1 when connected. Never
 * waits. The caller learns whether the guest's agent has its port open (VSERPORT_CHANGE, or query-chardev's
 * frontend-open after a restart). */
int qemu_vm_agent_connect(QemuVm *vm, const char *alias);

/* The socket (in the runtime directory, root's alone) QEMU listens on for the virtio console dev of
 * vm->live, whose pty virtbusd hands out itself (qemu_chardev_is_listened); -ENOENT for other devices. */
int qemu_vm_console_socket_path(const QemuVm *vm, const DeviceDef *dev, char **ret);

/* The start finished: r >= 0, vm runs (paused or not); r < 0 with e (QEMU's own complaint when it made
 * one): nothing runs, and the caller frees vm. */
typedef void (*QemuVmStartDone)(QemuVm *vm, int r, const VbError *e, void *userdata);

/* A start of QEMU for def (paused or running), in two steps, so that the caller can record the VM before
 * anything runs. qemu_vm_start makes the VM (vm->start set; nothing on the host yet: on failure, < 0 and
 * nothing to undo). qemu_vm_start_run hands the host's part (def's files opened with their owners' rights
 * from access, taps, macvtaps, sockets, the spawn) to a thread of worker and returns at once; from then on
 * done(vm) follows from the event loop once QEMU is ready and its live state read, or failed (nothing
 * left on the host; bounded by the open helpers' own bound, QEMU_MONITOR_TIMEOUT_USEC and the command
 * timeout). own_path(path, userdata) is called from that thread: it and userdata must stay valid until
 * done. qemu_vm_start_run fails (< 0 with reterr; LimitsExceeded when too many starts wait for the
 * worker) without calling done: the caller frees vm. */
int qemu_vm_start(const QemuVmConfig *cfg, const DomainDef *def, const DomainAccess *access,
                  bool (*own_path)(const char *path, void *userdata), void *userdata, unsigned id, bool paused,
                  QemuVmStartDone done, void *done_userdata, QemuVm **ret);
struct Worker;
int qemu_vm_start_run(QemuVm *vm, struct Worker *worker, VbError *reterr);
/* A VM that is starting stops trying: its QEMU is killed and done gets why (now; or, while the worker
 * thread has the start, as soon as the thread is done). */
void qemu_vm_start_abort(QemuVm *vm, const char *why);
/* Finds the domain with this UUID again after a restart of virtbusd: checks the process (-ESRCH when it
 * is gone; its files are removed then) and returns it at once with the state it had (vm->connecting);
 * its monitor is opened, and its state, descriptor sets and peripheral devices asked, without waiting:
 * done(vm) follows from the event loop with QEMU's state and its /machine/peripheral children (qom-list;
 * may be NULL), or r < 0 and a sentence (a QEMU that does not answer: bounded by the monitor's timeout). */
int qemu_vm_reconnect(const QemuVmConfig *cfg, const char *uuid, QemuVmReconnected done, void *userdata,
                      QemuVm **ret);
/* SIGTERM, a short grace, SIGKILL; reaped. Removes the runtime files. */
int qemu_vm_terminate(QemuVm *vm);
/* The same without waiting: SIGTERM (and SIGCONT, for a stopped QEMU) now, SIGKILL from a timer after the
 * grace, and gone(vm, r) from the event loop once the process exited (reaped, files removed; r < 0: not
 * even SIGKILL ended it in time). The monitor and the command lists end now. Returns 1 when the process
 * is gone already (gone is not called), 0 when gone follows. */
int qemu_vm_terminate_async(QemuVm *vm, void (*gone)(QemuVm *vm, int r, void *userdata), void *userdata);
/* The hot-plug or in-place update in flight (at most one per VM), recorded ahead in
 * <runtime>/qemu/<uuid>.plug as the device's XML (an update's after a line "update N", N the first
 * descriptor set it hands QEMU, 0 if none), so that a restarted virtbusd can finish or undo what a stop cut
 * short: write (the whole record), read (*ret NULL if none; to free), remove. */
int qemu_vm_plug_write(QemuVm *vm, const char *xml);
int qemu_vm_plug_read(QemuVm *vm, char **ret);
void qemu_vm_plug_remove(QemuVm *vm);
/* Writes the state and live files again (after a state or definition change). */
int qemu_vm_save(QemuVm *vm);
/* Removes the runtime files and the host links made for the VM (macvtaps). */
void qemu_vm_remove_files(QemuVm *vm);
/* A macvtap for a type='direct' interface, up, with the interface's MAC; its /dev/tapN open in *ret_fd.
 * Recorded in vm->macvtaps. */
int qemu_vm_macvtap_create(QemuVm *vm, const DeviceDef *dev, char **ret_name, int *ret_fd, VbError *reterr);
void qemu_vm_macvtap_delete(QemuVm *vm, const char *name);
/* Records the macvtap name (made before, e.g. by a virtbusd that stopped since) in vm->macvtaps, so that it
 * is deleted with the VM; once only. */
int qemu_vm_macvtap_remember(QemuVm *vm, const char *name);
/* Fills the live definition from QEMU: aliases, PCI addresses and (chardevs_too) pty paths and the VNC
 * port. aliases are the QEMU ids per device of the live definition (NULL: the devices' own). In two
 * halves around a command list (qemu-sequence.h), so that nothing waits: the queries added to seq (their
 * step indices in idx[3]), and their answers applied to the live definition from the finished seq. */
void qemu_vm_seq_add_live_queries(QemuVm *vm, QemuSeq *seq, bool chardevs_too, size_t idx[3]);
int qemu_vm_seq_apply_live(QemuVm *vm, QemuSeq *seq, const size_t idx[3], char * const *aliases,
                           size_t n_aliases);
/* A command list's time bound for this VM. */
uint64_t qemu_vm_command_timeout(const QemuVm *vm);
QemuVm *qemu_vm_free(QemuVm *vm);
/* qemu-stats.c's, freed with the VM. */
void qemu_stats_cache_free(QemuStatsCache *cache);

/* The devices with an id in query-pci's answer: bus is the definition's (<address bus=>): 0 for the root
 * bus, N behind the bridge or port whose id is 'pci.N' (the PCI controller of index N). Devices behind a
 * bridge are listed only once firmware numbered its bus. qdev_id points into pci. *ret to free. */
typedef struct QemuPciSlot {
        const char *qdev_id;
        unsigned bus, slot, function;
} QemuPciSlot;
int qemu_pci_slots(struct json_object *pci, QemuPciSlot **ret, size_t *ret_n);


/* The last line QEMU wrote to its log since offset, without its timestamp (to free; NULL if none). */
char *qemu_vm_log_tail(const char *log_path, long offset);
