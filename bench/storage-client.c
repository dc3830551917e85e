/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench/storage-client ADDRESS VOLUME_PATH Upload|Download FD: calls the method with descriptor FD
 * (inherited from the shell), offset 0, length 0, flags 0, and waits for the answer (busctl cannot pass
 * descriptors). Exit status 0 on success; the error on stderr otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>

int main(int argc, char **argv) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        int r;

        if (argc != 5) {
                fprintf(stderr, "usage: %s ADDRESS VOLUME_PATH Upload|Download FD\n", argv[0]);
                return 2;
        }
        if ((r = sd_bus_new(&bus)) < 0 || (r = sd_bus_set_address(bus, argv[1])) < 0 ||
            (r = sd_bus_set_bus_client(bus, 1)) < 0 || (r = sd_bus_negotiate_fds(bus, 1)) < 0 ||
            (r = sd_bus_start(bus)) < 0) {
                fprintf(stderr, "cannot connect: %d\n", r);
                return 1;
        }
        r = sd_bus_call_method(bus, "org.virtbus1", argv[2], "org.virtbus1.StorageVol", argv[3], &error, &reply,
                               "httt", atoi(argv[4]), (uint64_t) 0, (uint64_t) 0, (uint64_t) 0);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", error.name, error.message);
                return 1;
        }
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return 0;
}
