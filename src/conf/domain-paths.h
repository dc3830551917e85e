/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "conf/domain-conf.h"
#include "util/strbuf.h"

/* The host paths a definition names, and whose rights open them.
 *
 * A guest may reach only what its owner may reach: every file and socket a definition names is opened
 * by virtbusd with the rights of whoever vouched for it (see host/user-open.h), and handed to the
 * hypervisor as a descriptor. This module only lists the paths (no I/O); core checks them at Define and
 * Attach, drivers open them at Start and hot-plug. */

/* How a path is used; the same order as HostOpenMode (host/user-open.h). */
typedef enum DomainPathUse {
        DOMAIN_PATH_READ,
        DOMAIN_PATH_READ_WRITE,
        DOMAIN_PATH_APPEND,
        DOMAIN_PATH_TRUNCATE,
        DOMAIN_PATH_DIRECTORY,
        DOMAIN_PATH_SOCKET_LISTEN,
        DOMAIN_PATH_SOCKET_CONNECT,
        _DOMAIN_PATH_USE_MAX,
} DomainPathUse;

/* Where a path of <os> is. */
typedef enum DomainOsPath {
        DOMAIN_OS_PATH_KERNEL,
        DOMAIN_OS_PATH_INITRD,
        DOMAIN_OS_PATH_LOADER, /* a pflash <loader> */
        DOMAIN_OS_PATH_BIOS,   /* any other <loader>: a ROM image */
        DOMAIN_OS_PATH_NVRAM,
        DOMAIN_OS_PATH_NVRAM_TEMPLATE,
        _DOMAIN_OS_PATH_MAX,
} DomainOsPath;

#define DOMAIN_PATH_NO_DEVICE SIZE_MAX

typedef struct DomainPath {
        char *path;
        DomainPathUse use;
        size_t device;   /* index into the definition's devices, or DOMAIN_PATH_NO_DEVICE for <os> */
        DomainOsPath os; /* with DOMAIN_PATH_NO_DEVICE */
        char *what;      /* for messages: "the kernel", "disk 'vda'", "serial port 0" */
} DomainPath;

typedef struct DomainPaths {
        DomainPath *v;
        size_t n, allocated;
} DomainPaths;

void domain_paths_done(DomainPaths *p);

/* Every host path of def (kernel, initrd, loader, NVRAM store and template, disks and cdroms, serial,
 * parallel, console and channel files, pipes, devices and UNIX sockets), in document order. */
int domain_def_host_paths(const DomainDef *def, DomainPaths *ret);
/* The same for one device (as attached: index is what DomainPath.device gets). */
int device_def_host_paths(const DeviceDef *dev, size_t index, DomainPaths *ret);

/* Whose rights count for a definition's paths: the owner's (who defined it; 0 for root), except for the
 * paths listed here with the uid that vouched for them (0: an administrator allowed the path through
 * org.virtbus1.domain.host-files; another uid: the user who attached the device). */
typedef struct DomainPathGrant {
        char *path;
        uint32_t uid;
} DomainPathGrant;

typedef struct DomainAccess {
        uint32_t owner;
        DomainPathGrant *grants;
        size_t n_grants;
} DomainAccess;

void domain_access_done(DomainAccess *a);
int domain_access_copy(const DomainAccess *a, DomainAccess *ret);
/* Adds or replaces the grant of path. */
int domain_access_grant(DomainAccess *a, const char *path, uint32_t uid);
/* The uid whose rights open path. */
uint32_t domain_access_uid_for(const DomainAccess *a, const char *path);

/* Stored before the XML of a saved definition, as processing instructions
 * (<?virtbus-owner uid="N"?>, <?virtbus-grant uid="N" path="..."?> with the path percent-encoded):
 * written in the same file, so that a crash never separates a definition from its owner. */
int domain_access_format(const DomainAccess *a, StrBuf *b);
/* Reads those at the start of text into *ret (owner 0 and no grants when there are none), and points
 * *ret_rest at what follows. -EBADMSG for a malformed one. */
int domain_access_parse(const char *text, DomainAccess *ret, const char **ret_rest);
