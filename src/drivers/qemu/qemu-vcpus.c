/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetVCPUs on a running QEMU: the command line has every possible vCPU (-smp current,maxcpus=N); here
 * query-hotpluggable-cpus says which slots are filled, and the vCPUs to add are device_add'ed into the
 * first empty slots (id "vcpuK", K the slot's number), the ones to remove device_del'ed from the last
 * filled ones we added. All asynchronous: the answer comes once QEMU replied to every command. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/qemu/qemu-driver-internal.h"
#include "util/log.h"

/* One vCPU slot of query-hotpluggable-cpus. */
typedef struct VcpuSlot {
        struct json_object *entry;
        int64_t key[4]; /* node, socket, die, core, thread as given, to order the slots */
        bool present;
        bool ours; /* hot-plugged by us (its qom-path is /machine/peripheral/...): removable */
} VcpuSlot;

struct QemuVcpusCall {
        QemuDriver *q;
        char uuid[37];
        uint32_t count;
        unsigned pending;
        int error;           /* the first failure */
        char *error_message; /* QEMU's words for it */
        VbDriverDone done;
        void *userdata;
        QemuVcpusCall *next;
};

static QemuVcpusCall *call_free(QemuVcpusCall *c) {
        QemuVcpusCall **i;

        for (i = &c->q->vcpus_calls; *i && *i != c; i = &(*i)->next)
                ;
        if (*i)
                *i = c->next;
        free(c->error_message);
        free(c);
        return NULL;
}

static void call_finish(QemuVcpusCall *c, int r, VbErrorCode code, const char *fmt, ...) _printf_(4, 5);
static void call_finish(QemuVcpusCall *c, int r, VbErrorCode code, const char *fmt, ...) {
        VbError e = VB_ERROR_NULL;

        if (r < 0 && fmt) {
                _cleanup_free_ char *s = NULL;
                va_list ap;

                va_start(ap, fmt);
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                vb_error_set(&e, code, "%s", s ?: "Failed to change the vCPUs");
        }
        c->done(r, r < 0 ? &e : NULL, c->userdata);
        vb_error_free(&e);
        call_free(c);
}

static void slot_read(VcpuSlot *s, struct json_object *entry) {
        static const char * const keys[] = { "socket-id", "die-id", "core-id", "thread-id" };
        struct json_object *props = qemu_json_get(entry, "props");
        const char *path = qemu_json_string(entry, "qom-path");

        s->entry = entry;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                struct json_object *v = qemu_json_get(props, keys[i]);
                s->key[i] = v ? json_object_get_int64(v) : 0;
        }
        s->present = path != NULL;
        s->ours = path && strncmp(path, "/machine/peripheral/", 20) == 0;
}

static int slot_compare(const void *a, const void *b) {
        const VcpuSlot *x = a, *y = b;

        for (size_t i = 0; i < ELEMENTSOF(x->key); i++)
                if (x->key[i] != y->key[i])
                        return x->key[i] < y->key[i] ? -1 : 1;
        return 0;
}

static void on_command(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuVcpusCall *c = userdata;
        QemuVm *vm;

        if (error && c->error == 0) {
                c->error = -EIO;
                c->error_message = strdup(error);
        }
        if (--c->pending > 0)
                return;
        if (c->error < 0) {
                call_finish(c, c->error, VB_ERROR_OPERATION_FAILED, "Failed to change the vCPUs of domain %s: %s",
                            c->uuid, c->error_message ?: "out of memory");
                return;
        }
        vm = hashmap_get(c->q->vms, c->uuid);
        if (vm) {
                vm->live->vcpus_current = c->count == vm->live->vcpus ? 0 : c->count;
                vm->live->serial = domain_def_new_serial();
                (void) qemu_vm_save(vm);
        }
        log_debug("Domain %s: %u vCPUs.", c->uuid, c->count);
        call_finish(c, 0, 0, NULL);
}

/* Sends device_add (add) or device_del for slot number k. */
static int slot_command(QemuVcpusCall *c, QemuVm *vm, const VcpuSlot *slot, size_t k, bool add) {
        struct json_object *args = json_object_new_object();
        char id[32];
        int r;

        if (!args)
                return -ENOMEM;
        snprintf(id, sizeof id, "vcpu%zu", k);
        if (add) {
                json_object_object_add(args, "driver", json_object_new_string(qemu_json_string(slot->entry, "type")));
                json_object_object_foreach(qemu_json_get(slot->entry, "props"), key, v)
                        json_object_object_add(args, key, json_object_get(v));
                json_object_object_add(args, "id", json_object_new_string(id));
                r = qemu_monitor_call(vm->mon, "device_add", args, on_command, c);
        } else {
                /* Ours were named by us; the id is the last part of their qom-path. */
                const char *path = qemu_json_string(slot->entry, "qom-path");
                json_object_object_add(args, "id", json_object_new_string(strrchr(path, '/') + 1));
                r = qemu_monitor_call(vm->mon, "device_del", args, on_command, c);
        }
        if (r >= 0)
                c->pending++;
        return r;
}

static void on_hotpluggable(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuVcpusCall *c = userdata;
        QemuVm *vm = hashmap_get(c->q->vms, c->uuid);
        size_t n = ret && json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
        _cleanup_free_ VcpuSlot *slots = NULL;
        uint32_t present = 0, ours = 0;
        int r = 0;

        if (error || !vm || n == 0) {
                call_finish(c, -EIO, VB_ERROR_OPERATION_FAILED, "Failed to find the vCPU slots of domain %s: %s",
                            c->uuid, error ?: "QEMU listed none");
                return;
        }
        slots = new0(VcpuSlot, n);
        if (!slots) {
                call_finish(c, -ENOMEM, VB_ERROR_OPERATION_FAILED, "Out of memory");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                slot_read(&slots[i], json_object_array_get_idx(ret, i));
                present += slots[i].present;
                ours += slots[i].ours;
        }
        qsort(slots, n, sizeof *slots, slot_compare);
        if (c->count < present && present - c->count > ours) {
                call_finish(c, -EINVAL, VB_ERROR_INVALID_ARGUMENT,
                            "Domain %s started with %u vCPUs, which cannot be removed while it runs: at least %u "
                            "asked, %u given", c->uuid, present - ours, present - ours, c->count);
                return;
        }
        /* pending counts one more until all are sent, so that no reply finishes the call early. */
        c->pending = 1;
        for (size_t i = 0; r >= 0 && i < n && present < c->count; i++)
                if (!slots[i].present) {
                        r = slot_command(c, vm, &slots[i], i, true);
                        present++;
                }
        for (size_t i = n; r >= 0 && i > 0 && present > c->count; i--)
                if (slots[i - 1].ours) {
                        r = slot_command(c, vm, &slots[i - 1], i - 1, false);
                        present--;
                }
        if (r < 0 && c->error == 0) {
                c->error = r;
                c->error_message = strdup(strerror(-r));
        }
        on_command(mon, NULL, NULL, c);
}

int qemu_set_vcpus(VbDriver *drv, const char *uuid, uint32_t count, VbDriverDone done, void *userdata,
                   VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        QemuVcpusCall *c;
        int r;

        if (!vm)
                return -EBUSY;
        for (c = q->vcpus_calls; c; c = c->next)
                if (streq(c->uuid, uuid))
                        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "The vCPUs of domain %s are being changed "
                                            "already", uuid);
        if (!qemu_monitor_is_open(vm->mon))
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to change the vCPUs of domain %s: no "
                                    "connection to QEMU", uuid);
        c = new0(QemuVcpusCall, 1);
        if (!c)
                return -ENOMEM;
        *c = (QemuVcpusCall) { .q = q, .count = count, .done = done, .userdata = userdata, .next = q->vcpus_calls };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        q->vcpus_calls = c;
        r = qemu_monitor_call(vm->mon, "query-hotpluggable-cpus", NULL, on_hotpluggable, c);
        if (r < 0) {
                call_free(c);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to ask QEMU for the vCPU slots of "
                                    "domain %s: %s", uuid, strerror(-r));
        }
        return 0;
}

void qemu_vcpus_abort(QemuDriver *q, const char *uuid) {
        for (QemuVcpusCall *c = q->vcpus_calls, *next; c; c = next) {
                next = c->next;
                if (streq(c->uuid, uuid))
                        call_finish(c, -ESRCH, VB_ERROR_INVALID_STATE, "Domain %s stopped before its vCPUs were "
                                    "changed", uuid);
        }
}

void qemu_vcpus_drop(QemuDriver *q) {
        while (q->vcpus_calls)
                call_free(q->vcpus_calls);
}
