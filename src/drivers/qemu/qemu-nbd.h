/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* copy-storage: the destination's NBD export of new disks (qemu-nbd-in.c) and the source's mirrors into
 * it (qemu-migrate.c), authenticated by a pre-shared key (TLS-PSK) the destination makes per migration. */
#include <stdbool.h>

#include "drivers/qemu/qemu-driver-internal.h"

#define QEMU_NBD_KEY_HEX 64U
#define QEMU_NBD_PSK_USER "virtbus"
#define QEMU_NBD_TLS_ID "virtbus-nbd-tls"

/* A new random key, in hex. */
int qemu_nbd_key_new(char ret[static QEMU_NBD_KEY_HEX + 1]);
/* Whether key is QEMU_NBD_KEY_HEX lowercase hex digits. */
bool qemu_nbd_key_valid(const char *key);
/* A new directory <runtime>/<uuid>.nbd-<side> holding keys.psk ("virtbus:KEY") for QEMU's user alone; its
 * path and an open descriptor of it (for add-fd: QEMU reads it as /proc/self/fd/N). */
int qemu_nbd_psk_make(QemuDriver *q, const char *uuid, const char *side, const char *key, char **ret_dir,
                      int *ret_fd);
void qemu_nbd_psk_remove(const char *dir);
/* A disk copy-storage can copy: a file, raw or qcow2; else NotSupported naming it. The source's may have a
 * backing chain (source: true): the copy is the whole chain flattened into one image, so the destination's
 * definition names that one image, without <backingStore>. */
int qemu_nbd_disk_check(const DeviceDef *dev, bool source, VbError *reterr);

/* driver.h's disks_create, disks_export, disks_end. */
int qemu_disks_create(VbDriver *drv, const DomainDef *def, const DomainAccess *access, const VbMigrateDisk *disks,
                      size_t n, VbDriverOpDone done, void *userdata, VbError *reterr);
int qemu_disks_export(VbDriver *drv, const char *uuid, int listen_fd, VbDriverExportDone done, void *userdata,
                      VbError *reterr);
void qemu_disks_end(VbDriver *drv, const char *uuid, bool remove);
/* The driver closes: the exports are forgotten (QEMU keeps them; the files stay). */
void qemu_nbd_in_close(QemuDriver *q);

/* The source's mirrors of this VM end (its QEMU went away). */
void qemu_mirrors_abort(QemuDriver *q, const char *uuid);
void qemu_mirrors_close(QemuDriver *q);

/* qemu-nbd-out.c: Domain.MigrateTo with copy-storage (params->nbd_uri, nbd_key): every writable disk of vm
 * is mirrored into the destination's export first, then the memory goes (qemu_migrate_ram_start), then the
 * mirrors end; done once, as migrate_out's. */
int qemu_mirror_start(QemuDriver *q, QemuVm *vm, int fd, const VbMigrateParams *params, VbDriverMigrationStats stats,
                      VbDriverOpDone done, void *userdata, VbError *reterr);
/* A copy not yet in its memory phase stops at its next look (its done says so); false: none such. */
bool qemu_mirror_cancel(QemuDriver *q, const char *uuid);
/* qemu-migrate.c: the memory phase alone (parameters, then migrate to fd). */
int qemu_migrate_ram_start(QemuDriver *q, const char *uuid, int fd, const VbMigrateParams *params,
                           VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr);
