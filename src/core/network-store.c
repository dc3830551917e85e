/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Saved network definitions (core/def-store.h: <dir>/<uuid>.xml written atomically, autostart links),
 * and the live definitions of active networks in the status dir. */
#include <stdio.h>

#include "core/def-store.h"
#include "core/network-internal.h"
#include "util/fileio.h"
#include "util/log.h"

int network_store_save(Durable *durable, const char *dir, const NetworkDef *def, VbError *reterr) {
        _cleanup_free_ char *xml = NULL;
        char uuid[37];
        int r;

        r = network_def_format(def, &xml);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format the definition: %s",
                                    strerror(-r));
        network_def_get_uuid_string(def, uuid);
        return def_store_save(durable, dir, uuid, xml, reterr);
}

int network_store_remove(Durable *durable, const char *dir, const char *uuid, VbError *reterr) {
        return def_store_remove(durable, dir, uuid, reterr);
}

int network_store_set_autostart(Durable *durable, const char *dir, const char *uuid, bool autostart,
                                VbError *reterr) {
        return def_store_set_autostart(durable, dir, uuid, autostart, reterr);
}

bool network_store_get_autostart(const char *dir, const char *uuid) {
        return def_store_get_autostart(dir, uuid);
}

typedef struct LoadContext {
        NetworkStoreLoadFunc cb;
        void *userdata;
} LoadContext;

static int load_one(const char *path, const char *uuid, const char *xml, void *userdata) {
        LoadContext *c = userdata;
        VbError e = VB_ERROR_NULL;
        NetworkDef *def = NULL;
        char got[37];
        int r;

        r = network_def_parse_string(xml, 0, &def, &e);
        if (r < 0) {
                log_warning("Failed to load '%s' (%s), ignoring; the file is kept as it is.", path,
                            e.message ?: strerror(-r));
                vb_error_free(&e);
                return 0;
        }
        network_def_get_uuid_string(def, got);
        if (!streq(uuid, got)) {
                log_warning("'%s' holds the network with UUID %s, not the one its name says, ignoring.", path, got);
                network_def_free(def);
                return 0;
        }
        return c->cb(def, c->userdata);
}

int network_store_load_all(const char *dir, NetworkStoreLoadFunc cb, void *userdata) {
        return def_store_load_all(dir, load_one, &(LoadContext) { cb, userdata });
}
