/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "conf/network-conf.h"
#include "conf/nodedev-conf.h"
#include "conf/snapshot-conf.h"
#include "conf/storage-conf.h"
#include "tools/virtbus-xml-server.h"
#include "util/fileio.h"

/* virtbus-xml format|validate KIND FILE: parses FILE as KIND and prints the canonical XML (format)
 * or nothing (validate); exits 1 with the error on stderr.
 * virtbus-xml serve -- COMMAND...: runs COMMAND; every virtbus-xml it runs meanwhile is answered by a
 * child of this process, forked with the schemas already compiled (virtbus-xml-server.h). */

static int usage(void) {
        fprintf(stderr,
                "Usage: virtbus-xml format|validate KIND FILE\n"
                "       virtbus-xml serve -- COMMAND [ARG...]\n"
                "  KIND: domain, device, network, nodedev, storagepool, storagevol, snapshot\n"
                "Parses FILE, validates it and prints it in canonical form (format).\n"
                "serve: runs COMMAND, answering each virtbus-xml it runs from a process that compiled the\n"
                "schemas once (for scripts that run virtbus-xml many times).\n");
        return 2;
}

static int handle(const char *kind, const char *xml, bool print, char **ret, VbError *e) {
        /* The tool must give the same bytes for the same definition: derive defaults from content. */
        unsigned parse_flags = DOMAIN_PARSE_STABLE_DEFAULTS;
        int r;

        if (streq(kind, "domain")) {
                _cleanup_(domain_def_freep) DomainDef *def = NULL;

                r = domain_def_parse_string(xml, parse_flags, &def, e);
                if (r >= 0 && print)
                        r = domain_def_format(def, DOMAIN_FORMAT_SECURE, ret);
                return r;
        }
        if (streq(kind, "device")) {
                _cleanup_(device_def_freep) DeviceDef *def = NULL;

                r = device_def_parse_string(xml, parse_flags, &def, e);
                if (r >= 0 && print)
                        r = device_def_format(def, DEVICE_FORMAT_SECURE, ret);
                return r;
        }
        if (streq(kind, "nodedev")) {
                _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL;

                r = nodedev_def_parse_string(xml, &def, e);
                if (r >= 0 && print)
                        r = nodedev_def_format(def, ret);
                return r;
        }
        if (streq(kind, "network")) {
                _cleanup_(network_def_freep) NetworkDef *def = NULL;

                r = network_def_parse_string(xml, NETWORK_PARSE_STABLE_DEFAULTS, &def, e);
                if (r >= 0 && print)
                        r = network_def_format(def, ret);
                return r;
        }
        if (streq(kind, "storagepool")) {
                _cleanup_(storage_pool_def_freep) StoragePoolDef *def = NULL;

                r = storage_pool_def_parse_string(xml, STORAGE_PARSE_STABLE_DEFAULTS, &def, e);
                if (r >= 0 && print)
                        r = storage_pool_def_format(def, ret);
                return r;
        }
        if (streq(kind, "snapshot")) {
                _cleanup_(snapshot_def_freep) SnapshotDef *def = NULL;

                r = snapshot_def_parse_string(xml, &def, e);
                if (r >= 0 && print)
                        r = snapshot_def_format(def, DOMAIN_FORMAT_SECURE, ret);
                return r;
        }
        if (streq(kind, "storagevol")) {
                _cleanup_(storage_vol_def_freep) StorageVolDef *def = NULL;

                r = storage_vol_def_parse_string(xml, &def, e);
                if (r >= 0 && print)
                        r = storage_vol_def_format(def, ret);
                return r;
        }
        return vb_error_set(e, VB_ERROR_INVALID_ARGUMENT, "Unknown kind '%s'.", kind);
}

static int xml_command(int argc, char *argv[]) {
        _cleanup_free_ char *xml = NULL, *out = NULL;
        VbError e = VB_ERROR_NULL;
        bool print;
        int r;

        if (argc != 4)
                return usage();
        if (streq(argv[1], "format"))
                print = true;
        else if (streq(argv[1], "validate"))
                print = false;
        else
                return usage();
        r = read_full_file(argv[3], 0, &xml, NULL);
        if (r < 0) {
                fprintf(stderr, "Failed to read '%s': %s\n", argv[3], strerror(-r));
                return 1;
        }
        r = handle(argv[2], xml, print, &out, &e);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[3], e.message ?: strerror(-r));
                vb_error_free(&e);
                return 1;
        }
        if (out)
                fputs(out, stdout);
        return 0;
}

int main(int argc, char *argv[]) {
        const char *server = getenv(XML_SERVER_ENV);
        int r;

        if (argc >= 2 && streq(argv[1], "serve")) {
                if (argc < 4 || !streq(argv[2], "--"))
                        return usage();
                return xml_server_run(argv + 3, xml_command);
        }
        /* Under a server: the same command, run by a child of the server. Without one (gone, not
         * reachable), here. */
        if (!isempty(server)) {
                r = xml_server_call(server, argc, argv);
                if (r >= 0)
                        return r;
        }
        return xml_command(argc, argv);
}
