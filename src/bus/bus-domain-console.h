/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

/* org.virtbus1.Domain's OpenConsole, OpenGraphics and Screenshot (bus-domain.c puts them in its vtable). */
int bus_domain_method_open_console(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_open_graphics(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_screenshot(sd_bus_message *m, void *userdata, sd_bus_error *error);
