/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

/* Work off the event loop: a few threads take jobs from a bounded queue, and each job's done callback
 * runs on the event loop afterwards (the threads wake it through an eventfd). The work function must be
 * pure as far as the loop is concerned: it touches nothing but its job's own data and what is safe from
 * any thread (the conf parsers are: see conf-schema.c and conf-node.c). */
typedef struct BusWorker BusWorker;

/* In a worker thread. */
typedef void (*BusWorkFunc)(void *userdata);
/* On the event loop, once work has run; cancelled when it never will (the worker is being freed). */
typedef void (*BusWorkDoneFunc)(void *userdata, bool cancelled);

int bus_worker_new(sd_event *event, unsigned n_threads, size_t queue_max, BusWorker **ret);
/* Stops the threads after their current job; the done callbacks of jobs not run are called (cancelled),
 * and those of jobs run but not yet delivered too (not cancelled). */
BusWorker *bus_worker_free(BusWorker *w);

/* Queues a job; -EAGAIN when queue_max jobs wait already, -ENOMEM. */
int bus_worker_submit(BusWorker *w, BusWorkFunc work, BusWorkDoneFunc done, void *userdata);
