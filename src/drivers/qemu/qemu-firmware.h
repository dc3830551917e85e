/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "conf/domain-paths.h"
#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "conf/domain-conf.h"
#include "util/error.h"

/* QEMU's firmware descriptors (its interop format: one .json per firmware image, in
 * /etc/qemu/firmware and /usr/share/qemu/firmware), read once per use by both the domain capabilities
 * (qemu-caps-domain.c) and the start of a domain (firmware auto-selection and the UEFI variable store). */

/* The directories, NULL-terminated; a file in an earlier one hides a later one's of the same name. */
extern const char * const qemu_firmware_dirs[];

typedef struct QemuFirmware {
        char *descriptor;      /* the .json file */
        bool uefi, bios;       /* interface-types */
        bool flash;            /* mapping device 'flash' (else 'memory') */
        char *executable;      /* the image QEMU loads */
        char *nvram_template;  /* flash: the variable store template; NULL if none */
        bool secure_boot, requires_smm, enrolled_keys; /* features */
        struct json_object *targets; /* [{ architecture, machines: [glob...] }] (a reference) */
} QemuFirmware;

typedef struct QemuFirmwareList {
        QemuFirmware *items; /* in priority order: by file name, across the directories */
        size_t n;
} QemuFirmwareList;

/* Reads the descriptors of dirs (NULL-terminated); unreadable or malformed ones are left out, as are
 * those with a mapping we do not know. */
int qemu_firmware_list_load(const char * const *dirs, QemuFirmwareList *ret);
void qemu_firmware_list_done(QemuFirmwareList *l);

/* Whether f is for QEMU arch qemu_arch ("x86_64") and machine (a canonical name such as "pc-q35-7.2",
 * or QEMU's aliases "pc" and "q35", which stand for the newest version of their family). */
bool qemu_firmware_targets(const QemuFirmware *f, const char *qemu_arch, const char *machine);
/* Whether f's images exist and are readable. */
bool qemu_firmware_usable(const QemuFirmware *f);

/* The firmware of a domain about to start, in a copy of def (*ret; NULL when def needs nothing):
 *   <os firmware='efi'> without a loader: the UEFI descriptor for the domain's arch and machine that
 *     matches <firmware><feature/> (secure boot only when asked) becomes <loader type='pflash'
 *     readonly='yes' secure=...> and <nvram template=...>; a loader named with firmware='efi' is looked
 *     up among the descriptors for its template;
 *   a read-only pflash loader: the variable store <nvram> names, or nvram_dir/<uuid>_VARS.fd when it
 *     names none (written into the copy); a store that does not exist is created from the template
 *     (<nvram template=>, else the descriptor's of the loader), atomically, mode 0600. The template is
 *     read, and a store the definition names is written, with the rights access gives for each path
 *     (conf/domain-paths.h; NULL: root's): nothing is read or made as root on a less privileged
 *     caller's word. The store under nvram_dir is the service's own.
 * Errors: NotSupported when no descriptor fits (the sentence says what was looked for), InvalidArgument
 * when a store is missing and there is no template, OperationFailed when the copy failed. */
int qemu_firmware_prepare(const DomainDef *def, const DomainAccess *access, const char * const *dirs,
                          const char *nvram_dir, DomainDef **ret, VbError *reterr);

/* The store qemu_firmware_prepare picks when <nvram> names none (to free). */
char *qemu_firmware_default_nvram(const char *nvram_dir, const char *uuid);

/* After Undefine of a shut-off domain: removes the store qemu_firmware_prepare made for it under
 * nvram_dir (never one the definition names elsewhere). */
void qemu_firmware_forget(const DomainDef *def, const char *nvram_dir);
