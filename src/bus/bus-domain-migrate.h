/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

/* Live migration on the bus (core/domain-migrate.h): Manager.PrepareMigration, Domain.MigrateTo,
 * FinishMigration, AbortMigration and the MigrationStats signal, in vtables of their own. */
int bus_domain_migrate_register(BusServer *s);
