/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "conf/domain-conf.h"
#include "drivers/driver.h"
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

typedef struct QemuVmCallbacks {
        void (*event)(QemuVm *vm, const char *name, struct json_object *data, void *userdata);
        /* The process exited (it is reaped already). */
        void (*exited)(QemuVm *vm, void *userdata);
} QemuVmCallbacks;

typedef struct QemuVmConfig {
        sd_event *event;
        const char *emulator;
        /* How every QEMU is shut in (host/process.h): its user, the directories it does not see. NULL
         * (an unprivileged virtbusd, --user) runs it as ourselves. The device nodes are each VM's own. */
        const HostConfinement *confinement;
        const char *runtime_dir; /* <runtime>/qemu */
        const char *log_dir;     /* <state>/qemu/log */
        bool kvm_usable;
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
        DomainDef *live;
        DomainState state;
        char **macvtaps;    /* the macvtaps made for type='direct' interfaces, deleted with the VM */
        size_t n_macvtaps, n_macvtaps_allocated;
        char *log_path;
        long log_offset; /* where this run's QEMU output begins */
        unsigned next_fdset; /* the next free -add-fd set (hot-plug adds sets past those of the start) */
        /* Lifecycle bookkeeping of the driver. */
        bool destroying;    /* we are killing it: its exit is expected */
        bool shutdown_seen; /* the guest powered off (SHUTDOWN event) */
        bool crashed;       /* GUEST_PANICKED */
        bool reboot_requested; /* a Reboot request: the next SHUTDOWN follows <on_reboot> */
        bool stop_requested;   /* a lifecycle action is ending the process */
        bool restarting;       /* a lifecycle action reset the guest: the STOP before its RESUME is no pause */
        void *priv;         /* the driver's */
};

/* Starts QEMU for def (paused or running). On failure fills reterr with QEMU's own complaint. */
int qemu_vm_start(const QemuVmConfig *cfg, const DomainDef *def, const DomainAccess *access,
                  bool (*own_path)(const char *path, void *userdata), void *userdata, unsigned id, bool paused,
                  QemuVm **ret, VbError *reterr);
/* Finds the domain with this UUID again after a restart of virtbusd: checks the process, reconnects
 * to its monitor and asks its state. -ESRCH when it is gone (its files are removed then). */
int qemu_vm_reconnect(const QemuVmConfig *cfg, const char *uuid, QemuVm **ret);
/* SIGTERM, a short grace, SIGKILL; reaped. Removes the runtime files. */
int qemu_vm_terminate(QemuVm *vm);
/* Writes the state and live files again (after a state or definition change). */
int qemu_vm_save(QemuVm *vm);
/* Removes the runtime files and the host links made for the VM (macvtaps). */
void qemu_vm_remove_files(QemuVm *vm);
/* A macvtap for a type='direct' interface, up, with the interface's MAC; its /dev/tapN open in *ret_fd.
 * Recorded in vm->macvtaps. */
int qemu_vm_macvtap_create(QemuVm *vm, const DeviceDef *dev, char **ret_name, int *ret_fd, VbError *reterr);
void qemu_vm_macvtap_delete(QemuVm *vm, const char *name);
/* Fills the live definition from QEMU: aliases, PCI addresses and (chardevs_too) pty paths and the VNC
 * port. aliases are the QEMU ids per device of the live definition (NULL: the devices' own). The queries
 * are pipelined, with command (e.g. "cont"; may be NULL) behind them in the same round trip: the result is
 * command's (failing to read the live state is only logged). */
int qemu_vm_refresh_live_then(QemuVm *vm, char * const *aliases, size_t n_aliases, bool chardevs_too,
                              const char *what, const char *command, VbError *reterr);
QemuVm *qemu_vm_free(QemuVm *vm);

/* The devices with an id in query-pci's answer: bus is the definition's (<address bus=>): 0 for the root
 * bus, N behind the bridge or port whose id is 'pci.N' (the PCI controller of index N). Devices behind a
 * bridge are listed only once firmware numbered its bus. qdev_id points into pci. *ret to free. */
typedef struct QemuPciSlot {
        const char *qdev_id;
        unsigned bus, slot, function;
} QemuPciSlot;
int qemu_pci_slots(struct json_object *pci, QemuPciSlot **ret, size_t *ret_n);

/* A QMP command with a bounded wait; QEMU's refusal becomes reterr ("what: QEMU's sentence"). */
int qemu_vm_command(QemuVm *vm, const char *what, const char *command, struct json_object *args,
                    struct json_object **ret, VbError *reterr);

/* The last line QEMU wrote to its log since offset, without its timestamp (to free; NULL if none). */
char *qemu_vm_log_tail(const char *log_path, long offset);
