/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf-node.h"
#include "util/error.h"
#include "util/string-table.h"

/* Storage pools (<pool>) and volumes (<volume>). As for networks, the typed part is what the service
 * acts on (type, name, UUID, target path, sizes, formats); everything else is kept in extra and merged
 * back when formatting (see conf-node.h), so that a definition round-trips without loss. */

typedef enum StoragePoolType {
        STORAGE_POOL_DIR,
        STORAGE_POOL_FS,
        STORAGE_POOL_NETFS,
        STORAGE_POOL_LOGICAL,
        STORAGE_POOL_DISK,
        STORAGE_POOL_ISCSI,
        STORAGE_POOL_ISCSI_DIRECT,
        STORAGE_POOL_SCSI,
        STORAGE_POOL_MPATH,
        STORAGE_POOL_RBD,
        STORAGE_POOL_SHEEPDOG,
        STORAGE_POOL_GLUSTER,
        STORAGE_POOL_ZFS,
        STORAGE_POOL_VSTORAGE,
        _STORAGE_POOL_TYPE_MAX,
        _STORAGE_POOL_TYPE_INVALID = -EINVAL,
} StoragePoolType;

DECLARE_STRING_TABLE_LOOKUP(storage_pool_type, StoragePoolType);

typedef enum StorageVolType {
        STORAGE_VOL_FILE,
        STORAGE_VOL_BLOCK,
        STORAGE_VOL_DIR,
        STORAGE_VOL_NETWORK,
        STORAGE_VOL_NETDIR,
        STORAGE_VOL_PLOOP,
        _STORAGE_VOL_TYPE_MAX,
        _STORAGE_VOL_TYPE_INVALID = -EINVAL,
} StorageVolType;

DECLARE_STRING_TABLE_LOOKUP(storage_vol_type, StorageVolType);

/* <target><format type=>: image formats, then the partition types of disk pools. */
typedef enum StorageVolFormat {
        STORAGE_VOL_FORMAT_NONE,
        STORAGE_VOL_FORMAT_RAW,
        STORAGE_VOL_FORMAT_DIR,
        STORAGE_VOL_FORMAT_BOCHS,
        STORAGE_VOL_FORMAT_CLOOP,
        STORAGE_VOL_FORMAT_DMG,
        STORAGE_VOL_FORMAT_ISO,
        STORAGE_VOL_FORMAT_VPC,
        STORAGE_VOL_FORMAT_VDI,
        STORAGE_VOL_FORMAT_FAT,
        STORAGE_VOL_FORMAT_VHD,
        STORAGE_VOL_FORMAT_PLOOP,
        STORAGE_VOL_FORMAT_COW,
        STORAGE_VOL_FORMAT_QCOW,
        STORAGE_VOL_FORMAT_QCOW2,
        STORAGE_VOL_FORMAT_QED,
        STORAGE_VOL_FORMAT_VMDK,
        STORAGE_VOL_FORMAT_LUKS,
        STORAGE_VOL_FORMAT_LINUX,
        STORAGE_VOL_FORMAT_FAT16,
        STORAGE_VOL_FORMAT_FAT32,
        STORAGE_VOL_FORMAT_LINUX_SWAP,
        STORAGE_VOL_FORMAT_LINUX_LVM,
        STORAGE_VOL_FORMAT_LINUX_RAID,
        STORAGE_VOL_FORMAT_EXTENDED,
        /* what a volume of a file-system pool may hold */
        STORAGE_VOL_FORMAT_AUTO,
        STORAGE_VOL_FORMAT_UNKNOWN,
        STORAGE_VOL_FORMAT_FS_EXT2,
        STORAGE_VOL_FORMAT_FS_EXT3,
        STORAGE_VOL_FORMAT_FS_EXT4,
        STORAGE_VOL_FORMAT_FS_UFS,
        STORAGE_VOL_FORMAT_FS_ISO9660,
        STORAGE_VOL_FORMAT_FS_UDF,
        STORAGE_VOL_FORMAT_FS_GFS,
        STORAGE_VOL_FORMAT_FS_GFS2,
        STORAGE_VOL_FORMAT_FS_VFAT,
        STORAGE_VOL_FORMAT_FS_HFSPLUS,
        STORAGE_VOL_FORMAT_FS_XFS,
        STORAGE_VOL_FORMAT_FS_OCFS2,
        STORAGE_VOL_FORMAT_FS_VMFS,
        _STORAGE_VOL_FORMAT_MAX,
        _STORAGE_VOL_FORMAT_INVALID = -EINVAL,
} StorageVolFormat;

DECLARE_STRING_TABLE_LOOKUP(storage_vol_format, StorageVolFormat);

/* A size element (<capacity unit=...>N</capacity>), in bytes. */
typedef struct StorageSize {
        bool given;
        bool plain; /* written without unit= (bytes implied): formatted the same way */
        uint64_t bytes;
} StorageSize;

typedef struct StoragePoolDef {
        StoragePoolType type;
        char *name;
        uint8_t uuid[16];
        bool has_uuid;
        char *uuid_text; /* as written */
        /* Sizes are what the pool reports; in a definition they are kept but mean nothing. */
        StorageSize capacity, allocation, available;
        char *target_path; /* <target><path>, as written */
        ConfNode *extra;   /* everything else the user gave */
} StoragePoolDef;

typedef struct StorageVolDef {
        char *name;
        char *key;
        StorageVolType type;
        bool type_given;
        StorageSize capacity, allocation, physical;
        char *target_path;
        StorageVolFormat format;
        bool format_given;
        char *backing_path;
        StorageVolFormat backing_format;
        bool backing_format_given;
        ConfNode *extra;
} StorageVolDef;

#define STORAGE_PARSE_STABLE_DEFAULTS (1u << 0) /* derive a missing pool UUID from the content */

int storage_pool_def_parse_string(const char *xml, unsigned flags, StoragePoolDef **ret, VbError *reterr);
int storage_pool_def_format(const StoragePoolDef *def, char **ret);
int storage_pool_def_copy(const StoragePoolDef *def, StoragePoolDef **ret);
StoragePoolDef *storage_pool_def_free(StoragePoolDef *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(StoragePoolDef *, storage_pool_def_free);
void storage_pool_def_get_uuid_string(const StoragePoolDef *def, char ret[37]);

int storage_vol_def_parse_string(const char *xml, StorageVolDef **ret, VbError *reterr);
int storage_vol_def_format(const StorageVolDef *def, char **ret);
int storage_vol_def_copy(const StorageVolDef *def, StorageVolDef **ret);
StorageVolDef *storage_vol_def_free(StorageVolDef *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(StorageVolDef *, storage_vol_def_free);

/* Whether a volume name can be a file in a pool directory: non-empty, at most NAME_MAX bytes, no '/',
 * no leading '.', no control characters. Fills reterr (InvalidArgument) naming the problem. */
int storage_vol_name_check(const char *name, VbError *reterr);

/* Internal to src/conf: sizes in bytes from <x unit=>N</x> and back (unit='bytes'). */
int storage_take_size(ConfNode *parent, const char *name, StorageSize *ret, VbError *e);
int storage_add_size(ConfNode *parent, const char *name, const StorageSize *s);
