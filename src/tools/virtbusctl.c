/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl: options, the connection, the verb table, and the helpers the verbs share. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tools/virtbusctl.h"
#include "util/fileio.h"

CtlArgs arg = { .legend = true, .idle_timeout = 1.0 };

const CtlKind ctl_kind_domain = { "Domain", CTL_DOMAIN, "GetDomainByName", "ListDomains" };
const CtlKind ctl_kind_network = { "Network", CTL_NETWORK, "GetNetworkByName", "ListNetworks" };
const CtlKind ctl_kind_nodedev = { "Node device", CTL_NODEDEV, "GetNodeDeviceByName", NULL };
const CtlKind ctl_kind_pool = { "Storage pool", CTL_POOL, "GetStoragePoolByName", "ListStoragePools" };

static const Verb verbs[] = {
        { "list", 0, 0, verb_list, &ctl_kind_domain },
        { "show", 1, 1, verb_show, &ctl_kind_domain },
        { "define", 1, 1, verb_define, &ctl_kind_domain, "DefineDomain" },
        { "undefine", 1, 1, verb_simple, &ctl_kind_domain, "Undefine" },
        { "start", 1, 1, verb_start, &ctl_kind_domain, "Start" },
        { "shutdown", 1, 1, verb_simple, &ctl_kind_domain, "Shutdown" },
        { "reboot", 1, 1, verb_simple, &ctl_kind_domain, "Reboot" },
        { "reset", 1, 1, verb_simple, &ctl_kind_domain, "Reset" },
        { "destroy", 1, 1, verb_simple, &ctl_kind_domain, "Destroy" },
        { "suspend", 1, 1, verb_simple, &ctl_kind_domain, "Suspend" },
        { "resume", 1, 1, verb_simple, &ctl_kind_domain, "Resume" },
        { "autostart", 1, 1, verb_autostart, &ctl_kind_domain },
        { "rename", 2, 2, verb_rename, &ctl_kind_domain },
        { "dumpxml", 1, 1, verb_dumpxml, &ctl_kind_domain },
        { "edit", 1, 1, verb_edit, &ctl_kind_domain },
        { "attach-device", 2, 2, verb_device, &ctl_kind_domain, "AttachDevice" },
        { "detach-device", 2, 2, verb_device, &ctl_kind_domain, "DetachDevice" },
        { "update-device", 2, 2, verb_device, &ctl_kind_domain, "UpdateDevice" },
        { "domcapabilities", 0, 0, verb_domcapabilities },
        { "capabilities", 0, 0, verb_capabilities },
        { "stats", 0, 64, verb_stats, &ctl_kind_domain },
        { "setmem", 2, 2, verb_setmem, &ctl_kind_domain },
        { "setvcpus", 2, 2, verb_setvcpus, &ctl_kind_domain },
        { "domifaddr", 1, 1, verb_domifaddr, &ctl_kind_domain },
        { "managedsave", 1, 1, verb_managedsave, &ctl_kind_domain, "ManagedSave" },
        { "migrate", 2, 2, verb_migrate, &ctl_kind_domain },
        { "managedsave-remove", 1, 1, verb_managedsave, &ctl_kind_domain, "ManagedSaveRemove" },
        { "snapshot-create", 1, 2, verb_snapshot_create, &ctl_kind_domain },
        { "snapshot-list", 1, 1, verb_snapshot_list, &ctl_kind_domain },
        { "snapshot-dumpxml", 2, 2, verb_snapshot_dumpxml, &ctl_kind_domain },
        { "snapshot-revert", 2, 2, verb_snapshot_revert, &ctl_kind_domain },
        { "snapshot-delete", 2, 2, verb_snapshot_delete, &ctl_kind_domain },
        { "screenshot", 2, 2, verb_screenshot, &ctl_kind_domain },
        { "console", 1, 2, verb_console, &ctl_kind_domain },
        { "vnc", 1, 1, verb_vnc, &ctl_kind_domain },
        { "monitor", 0, 0, verb_monitor },
        { "net-list", 0, 0, verb_net_list, &ctl_kind_network },
        { "net-define", 1, 1, verb_define, &ctl_kind_network, "DefineNetwork" },
        { "net-start", 1, 1, verb_simple, &ctl_kind_network, "Start" },
        { "net-stop", 1, 1, verb_simple, &ctl_kind_network, "Stop" },
        { "net-undefine", 1, 1, verb_simple, &ctl_kind_network, "Undefine" },
        { "net-dumpxml", 1, 1, verb_object_dumpxml, &ctl_kind_network },
        { "net-dhcp-leases", 1, 2, verb_net_leases, &ctl_kind_network },
        { "nodedev-list", 0, 0, verb_nodedev_list, &ctl_kind_nodedev },
        { "nodedev-dumpxml", 1, 1, verb_object_dumpxml, &ctl_kind_nodedev },
        { "nodedev-detach", 1, 1, verb_nodedev_detach, &ctl_kind_nodedev },
        { "nodedev-reattach", 1, 1, verb_simple, &ctl_kind_nodedev, "ReAttach" },
        { "nodedev-reset", 1, 1, verb_simple, &ctl_kind_nodedev, "Reset" },
        { "nodedev-sriov", 1, 1, verb_nodedev_sriov, &ctl_kind_nodedev },
        { "nodedev-vf", 2, 2, verb_nodedev_vf, &ctl_kind_nodedev },
        { "pool-list", 0, 0, verb_pool_list, &ctl_kind_pool },
        { "pool-define", 1, 1, verb_define, &ctl_kind_pool, "DefineStoragePool" },
        { "pool-build", 1, 1, verb_simple, &ctl_kind_pool, "Build" },
        { "pool-start", 1, 1, verb_simple, &ctl_kind_pool, "Start" },
        { "pool-stop", 1, 1, verb_simple, &ctl_kind_pool, "Stop" },
        { "pool-undefine", 1, 1, verb_simple, &ctl_kind_pool, "Undefine" },
        { "pool-dumpxml", 1, 1, verb_object_dumpxml, &ctl_kind_pool },
        { "vol-list", 1, 1, verb_vol_list, &ctl_kind_pool },
        { "vol-create", 2, 2, verb_vol_create, &ctl_kind_pool },
        { "vol-delete", 2, 2, verb_vol_delete, &ctl_kind_pool },
        { "vol-upload", 3, 3, verb_vol_transfer, &ctl_kind_pool, "Upload" },
        { "vol-download", 3, 3, verb_vol_transfer, &ctl_kind_pool, "Download" },
};

static int help(void) {
        printf("virtbusctl [OPTIONS...] COMMAND ...\n\n"
               "Manage the virtual machines, networks, storage and host devices of virtbusd.\n\n"
               "Domains:\n"
               "  list [--all] [--state S]      List domains (running ones without --all)\n"
               "  show NAME                     Show a domain's properties\n"
               "  define FILE                   Define (or redefine) a domain from XML\n"
               "  undefine NAME                 Remove a domain's saved definition\n"
               "  start NAME [--paused]         Start a domain\n"
               "  shutdown|reboot|reset|destroy|suspend|resume NAME\n"
               "  autostart NAME [--disable]    Start the domain with virtbusd (or not)\n"
               "  rename NAME NEW-NAME          Rename a shut-off domain\n"
               "  dumpxml NAME [--inactive] [--secure]\n"
               "  edit NAME                     Edit the definition with $EDITOR\n"
               "  attach-device|detach-device|update-device NAME FILE [--live] [--config]\n"
               "  domcapabilities [--arch A] [--machine M] [--virttype T]\n"
               "  capabilities                  The host's capabilities\n"
               "  stats [NAME...] [--once]      Statistics (live view on a terminal without --once)\n"
               "  setmem NAME KIB [--live] [--config]\n"
               "  setvcpus NAME COUNT [--live] [--config] [--maximum]\n"
               "  domifaddr NAME [--source lease|agent|arp]  The guest's addresses\n"
               "  managedsave NAME              Save the state and stop (Start resumes)\n"
               "  managedsave-remove NAME       Forget the saved state\n"
               "  migrate NAME DEST [--listen-address ADDR] [--persistent] [--undefine-source] [--paused]\n"
               "          [--max-downtime MS] [--bandwidth MIB] [--copy-storage] [--postcopy]\n"
               "          [--postcopy-after PASSES] [--postcopy-bandwidth MIB]\n"
               "                                Move the running domain to DEST (a bus address, or an ssh host)\n"
               "  snapshot-create NAME [SNAPSHOT] [--description TEXT] [--disk-only]\n"
               "  snapshot-list NAME            The domain's snapshots\n"
               "  snapshot-dumpxml|snapshot-revert NAME SNAPSHOT\n"
               "  snapshot-delete NAME SNAPSHOT [--children|--children-only] [--metadata]\n"
               "  screenshot NAME FILE          Save a PNG of the display\n"
               "  console NAME [DEVICE] [--force] [--idle-timeout SEC]\n"
               "                                Attach to a serial console (Ctrl+] leaves)\n"
               "  vnc NAME                      A local socket for VNC viewers (until Ctrl+C)\n"
               "  monitor                       Print changes as they happen (until Ctrl+C)\n\n"
               "Networks and host devices:\n"
               "  net-list [--all]  net-define FILE  net-start|net-stop|net-undefine NAME\n"
               "  net-dumpxml NAME [--inactive]  net-dhcp-leases NAME [MAC]\n"
               "  nodedev-list [--cap CAP]  nodedev-dumpxml|nodedev-reattach|nodedev-reset NAME\n"
               "  nodedev-detach NAME [--driver vfio-pci]  nodedev-sriov NAME --vfs N\n"
               "  nodedev-vf NAME VF --mac MAC [--vlan V]\n\n"
               "Storage:\n"
               "  pool-list [--all]  pool-define FILE  pool-build|pool-start|pool-stop|pool-undefine NAME\n"
               "  pool-dumpxml NAME [--inactive]  vol-list POOL  vol-create POOL FILE  vol-delete POOL VOLUME\n"
               "  vol-upload|vol-download POOL VOLUME FILE [--offset N] [--length N]  (FILE '-': stdin/stdout)\n\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --user              Talk to the per-user service on the session bus\n"
               "     --address ADDR      Talk to the service on this bus address\n"
               "     --no-ask-password   Do not ask for authentication (polkit)\n"
               "     --json              One JSON document as output\n"
               "     --no-legend         No column headers\n\n"
               "See virtbusctl(1).\n");
        return 0;
}

enum {
        OPT_VERSION = 0x100, OPT_USER, OPT_ADDRESS, OPT_NO_ASK, OPT_JSON, OPT_NO_LEGEND, OPT_ALL, OPT_STATE,
        OPT_PAUSED, OPT_DISABLE, OPT_INACTIVE, OPT_SECURE, OPT_LIVE, OPT_CONFIG, OPT_MAXIMUM, OPT_ARCH, OPT_MACHINE,
        OPT_VIRTTYPE, OPT_ONCE, OPT_CAP, OPT_DRIVER, OPT_FORCE, OPT_NAMES, OPT_DESCRIPTION, OPT_CHILDREN,
        OPT_CHILDREN_ONLY, OPT_METADATA, OPT_VFS, OPT_MAC, OPT_VLAN, OPT_OFFSET, OPT_LENGTH, OPT_SOURCE,
        OPT_IDLE_TIMEOUT, OPT_DISK_ONLY,
        OPT_LISTEN_ADDRESS,
        OPT_PERSISTENT,
        OPT_UNDEFINE_SOURCE,
        OPT_COPY_STORAGE,
        OPT_POSTCOPY,
        OPT_POSTCOPY_AFTER,
        OPT_POSTCOPY_BANDWIDTH,
        OPT_MAX_DOWNTIME,
        OPT_BANDWIDTH,
};

static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { "user", no_argument, NULL, OPT_USER },
        { "address", required_argument, NULL, OPT_ADDRESS },
        { "no-ask-password", no_argument, NULL, OPT_NO_ASK },
        { "json", no_argument, NULL, OPT_JSON },
        { "no-legend", no_argument, NULL, OPT_NO_LEGEND },
        { "all", no_argument, NULL, OPT_ALL },
        { "state", required_argument, NULL, OPT_STATE },
        { "paused", no_argument, NULL, OPT_PAUSED },
        { "disable", no_argument, NULL, OPT_DISABLE },
        { "inactive", no_argument, NULL, OPT_INACTIVE },
        { "secure", no_argument, NULL, OPT_SECURE },
        { "live", no_argument, NULL, OPT_LIVE },
        { "config", no_argument, NULL, OPT_CONFIG },
        { "maximum", no_argument, NULL, OPT_MAXIMUM },
        { "arch", required_argument, NULL, OPT_ARCH },
        { "machine", required_argument, NULL, OPT_MACHINE },
        { "virttype", required_argument, NULL, OPT_VIRTTYPE },
        { "once", no_argument, NULL, OPT_ONCE },
        { "cap", required_argument, NULL, OPT_CAP },
        { "driver", required_argument, NULL, OPT_DRIVER },
        { "force", no_argument, NULL, OPT_FORCE },
        { "names", no_argument, NULL, OPT_NAMES }, /* for the shell completion: names, one a line */
        { "description", required_argument, NULL, OPT_DESCRIPTION },
        { "children", no_argument, NULL, OPT_CHILDREN },
        { "children-only", no_argument, NULL, OPT_CHILDREN_ONLY },
        { "metadata", no_argument, NULL, OPT_METADATA },
        { "disk-only", no_argument, NULL, OPT_DISK_ONLY },
        { "vfs", required_argument, NULL, OPT_VFS },
        { "mac", required_argument, NULL, OPT_MAC },
        { "vlan", required_argument, NULL, OPT_VLAN },
        { "offset", required_argument, NULL, OPT_OFFSET },
        { "length", required_argument, NULL, OPT_LENGTH },
        { "source", required_argument, NULL, OPT_SOURCE },
        { "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
        { "listen-address", required_argument, NULL, OPT_LISTEN_ADDRESS },
        { "persistent", no_argument, NULL, OPT_PERSISTENT },
        { "undefine-source", no_argument, NULL, OPT_UNDEFINE_SOURCE },
        { "copy-storage", no_argument, NULL, OPT_COPY_STORAGE },
        { "postcopy", no_argument, NULL, OPT_POSTCOPY },
        { "postcopy-after", required_argument, NULL, OPT_POSTCOPY_AFTER },
        { "postcopy-bandwidth", required_argument, NULL, OPT_POSTCOPY_BANDWIDTH },
        { "max-downtime", required_argument, NULL, OPT_MAX_DOWNTIME },
        { "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
        {}
};

static const char *arg_address;
static bool arg_user, arg_no_ask;

static int parse_u32(const char *s, const char *what, uint32_t *ret) {
        uint64_t v;
        int r = ctl_parse_u64(s, what, &v);

        if (r < 0)
                return r;
        if (v > UINT32_MAX) {
                fprintf(stderr, "Invalid %s '%s' (expected a number below 2^32)\n", what, s);
                return -CTL_EXIT_INVALID;
        }
        *ret = (uint32_t) v;
        return 0;
}

static int parse_seconds(const char *s, double *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end || !(v >= 0) || v > 86400) {
                fprintf(stderr, "Invalid --idle-timeout '%s' (expected seconds from 0 to 86400)\n", s);
                return -CTL_EXIT_INVALID;
        }
        *ret = v;
        return 0;
}

static int parse_argv(int argc, char **argv) {
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        exit(0);
                case OPT_VERSION:
                        printf("virtbusctl %s\n", PACKAGE_VERSION);
                        exit(0);
                case OPT_USER: arg_user = true; break;
                case OPT_ADDRESS: arg_address = optarg; break;
                case OPT_NO_ASK: arg_no_ask = true; break;
                case OPT_JSON: arg.json = true; break;
                case OPT_NO_LEGEND: arg.legend = false; break;
                case OPT_ALL: arg.all = true; break;
                case OPT_STATE: arg.state = optarg; break;
                case OPT_PAUSED: arg.paused = true; break;
                case OPT_DISABLE: arg.disable = true; break;
                case OPT_INACTIVE: arg.inactive = true; break;
                case OPT_SECURE: arg.secure = true; break;
                case OPT_LIVE: arg.live = true; break;
                case OPT_CONFIG: arg.config = true; break;
                case OPT_MAXIMUM: arg.maximum = true; break;
                case OPT_ARCH: arg.arch = optarg; break;
                case OPT_MACHINE: arg.machine = optarg; break;
                case OPT_VIRTTYPE: arg.virttype = optarg; break;
                case OPT_ONCE: arg.once = true; break;
                case OPT_CAP: arg.cap = optarg; break;
                case OPT_DRIVER: arg.driver = optarg; break;
                case OPT_FORCE: arg.force = true; break;
                case OPT_NAMES: arg.names = true; break;
                case OPT_DESCRIPTION: arg.description = optarg; break;
                case OPT_CHILDREN: arg.children = true; break;
                case OPT_CHILDREN_ONLY: arg.children_only = true; break;
                case OPT_METADATA: arg.metadata = true; break;
                case OPT_DISK_ONLY: arg.disk_only = true; break;
                case OPT_VFS: arg.vfs_set = true; r = parse_u32(optarg, "--vfs", &arg.vfs); break;
                case OPT_MAC: arg.mac = optarg; break;
                case OPT_VLAN: r = parse_u32(optarg, "--vlan", &arg.vlan); break;
                case OPT_OFFSET: r = ctl_parse_u64(optarg, "--offset", &arg.offset); break;
                case OPT_LENGTH: r = ctl_parse_u64(optarg, "--length", &arg.length); break;
                case OPT_SOURCE: arg.source = optarg; break;
                case OPT_IDLE_TIMEOUT: r = parse_seconds(optarg, &arg.idle_timeout); break;
                case OPT_LISTEN_ADDRESS: arg.listen_address = optarg; break;
                case OPT_PERSISTENT: arg.persistent = true; break;
                case OPT_UNDEFINE_SOURCE: arg.undefine_source = true; break;
                case OPT_COPY_STORAGE: arg.copy_storage = true; break;
                case OPT_POSTCOPY: arg.postcopy = true; break;
                case OPT_POSTCOPY_AFTER:
                        arg.postcopy = true;
                        r = ctl_parse_u64(optarg, "--postcopy-after", &arg.postcopy_after);
                        break;
                case OPT_POSTCOPY_BANDWIDTH:
                        arg.postcopy = true;
                        r = ctl_parse_u64(optarg, "--postcopy-bandwidth", &arg.postcopy_bandwidth);
                        break;
                case OPT_MAX_DOWNTIME: r = ctl_parse_u64(optarg, "--max-downtime", &arg.max_downtime); break;
                case OPT_BANDWIDTH: r = ctl_parse_u64(optarg, "--bandwidth", &arg.bandwidth); break;
                default:
                        return -CTL_EXIT_USAGE;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int connect_bus(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (arg_address) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, arg_address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else if (arg_user)
                r = sd_bus_open_user(&bus);
        else
                r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the %s bus: %s\n",
                        arg_address ? "given" : arg_user ? "session" : "system", strerror(-r));
                return r;
        }
        /* polkit may ask the user (through an agent) only when someone sits at a terminal. */
        (void) sd_bus_set_allow_interactive_authorization(bus, !arg_no_ask && isatty(STDIN_FILENO));
        *ret = TAKE_PTR(bus);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *v = NULL;
        int r, n;

        r = parse_argv(argc, argv);
        if (r < 0)
                return -r;
        arg.color = !arg.json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && !streq_ptr(getenv("TERM"), "dumb");
        if (optind >= argc) {
                fprintf(stderr, "No command given; see 'virtbusctl --help'.\n");
                return CTL_EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind]))
                        v = &verbs[i];
        if (!v) {
                fprintf(stderr, "Unknown command '%s'; see 'virtbusctl --help'.\n", argv[optind]);
                return CTL_EXIT_USAGE;
        }
        n = argc - optind - 1;
        if (n < (int) v->min_args || n > (int) v->max_args) {
                fprintf(stderr, "'%s' takes %s%u argument%s; see 'virtbusctl --help'.\n", v->name,
                        v->min_args == v->max_args ? "" : "at least ", v->min_args, v->min_args == 1 ? "" : "s");
                return CTL_EXIT_USAGE;
        }
        if (connect_bus(&bus) < 0)
                return CTL_EXIT_FAILED;
        r = v->func(bus, v, n, argv + optind + 1);
        return r < 0 ? -r : r;
}

/* Shared helpers ---------------------------------------------------------------------------- */

int ctl_error(const sd_bus_error *e, int r, const char *what) {
        const char *name = e ? e->name : NULL;

        if (e && sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_METHOD)) {
                /* An older virtbusd than this virtbusctl. */
                fprintf(stderr, "This virtbusd does not offer %s yet: %s\n", what, e->message ?: name);
                return CTL_EXIT_FAILED;
        }
        if (e && e->message)
                fprintf(stderr, "%s\n", e->message);
        else
                fprintf(stderr, "%s: %s\n", what, strerror(-r));
        if (!name)
                return r == -ENOENT ? CTL_EXIT_NO_SUCH : r == -EINVAL ? CTL_EXIT_INVALID : CTL_EXIT_FAILED;
        if (strncmp(name, "org.virtbus1.Error.NoSuch", 25) == 0 || streq(name, SD_BUS_ERROR_UNKNOWN_OBJECT))
                return CTL_EXIT_NO_SUCH;
        if (streq(name, SD_BUS_ERROR_ACCESS_DENIED) || streq(name, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                return CTL_EXIT_DENIED;
        if (streq(name, "org.virtbus1.Error.InvalidXML") || streq(name, SD_BUS_ERROR_INVALID_ARGS))
                return CTL_EXIT_INVALID;
        return CTL_EXIT_FAILED;
}

int ctl_parse_u64(const char *s, const char *what, uint64_t *ret) {
        char *end;
        uint64_t v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || s[0] == '+' || s[0] == ' ') {
                fprintf(stderr, "Invalid %s '%s' (expected a number)\n", what, s);
                return -CTL_EXIT_INVALID;
        }
        *ret = v;
        return 0;
}

int ctl_call(sd_bus *bus, const char *path, const char *interface, const char *member, sd_bus_message **reply,
             const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, CTL_SERVICE, path, interface, member);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0) {
                fprintf(stderr, "Failed to build the call %s: %s\n", member, strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        r = sd_bus_call(bus, m, CTL_CALL_TIMEOUT_USEC, &e, reply);
        if (r < 0)
                return -ctl_error(&e, r, member);
        return 0;
}

int ctl_event_new(sd_event **ret) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(event);
        return 0;
}

int ctl_lookup(sd_bus *bus, const CtlKind *k, const char *name, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, CTL_SERVICE, CTL_MANAGER_PATH, CTL_MANAGER, k->get_by_name, &e, &reply, "s",
                               name);
        if (r < 0 && k == &ctl_kind_domain && sd_bus_error_has_name(&e, "org.virtbus1.Error.NoSuchDomain") &&
            strlen(name) >= 32 && strspn(name, "0123456789abcdefABCDEF-") == strlen(name)) {
                /* A domain may also be named by its UUID. */
                sd_bus_error_free(&e);
                r = sd_bus_call_method(bus, CTL_SERVICE, CTL_MANAGER_PATH, CTL_MANAGER, "GetDomainByUUID", &e,
                                       &reply, "s", name);
        }
        if (r < 0)
                return -ctl_error(&e, r, k->get_by_name);
        if (sd_bus_message_read(reply, "o", &path) < 0 || !(*ret_path = strdup(path)))
                return -CTL_EXIT_FAILED;
        return 0;
}

int ctl_read_paths(sd_bus_message *reply, char ***ret) {
        int r = sd_bus_message_read_strv(reply, ret);
        if (r < 0) {
                fprintf(stderr, "Failed to read the reply: %s\n", strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        return 0;
}

void ctl_strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
}

int ctl_read_file(const char *path, char **ret) {
        int r;

        if (streq(path, "-"))
                r = read_full_fd(STDIN_FILENO, 0, ret, NULL);
        else
                r = read_full_file(path, 0, ret, NULL);
        if (r < 0) {
                fprintf(stderr, "Failed to read '%s': %s\n", path, strerror(-r));
                return -(r == -ENOENT ? CTL_EXIT_NO_SUCH : CTL_EXIT_INVALID);
        }
        return 0;
}

int ctl_get_string(sd_bus *bus, const char *path, const char *interface, const char *property, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(bus, CTL_SERVICE, path, interface, property, &e, ret);
        if (r < 0)
                return -ctl_error(&e, r, property);
        return 0;
}

int ctl_print_xml(const char *xml) {
        if (arg.json) {
                Json j;

                json_begin(&j, stdout);
                json_object_open(&j);
                json_key(&j, "xml");
                json_string(&j, xml);
                json_object_close(&j);
                json_end(&j);
        } else
                fputs(xml, stdout);
        return 0;
}

void ctl_print_done(const char *name, const char *path, const char *text) {
        if (arg.json) {
                Json j;

                json_begin(&j, stdout);
                json_object_open(&j);
                json_key(&j, "name");
                json_string(&j, name);
                json_key(&j, "path");
                json_string(&j, path);
                json_object_close(&j);
                json_end(&j);
        } else if (text)
                printf("%s\n", text);
}
