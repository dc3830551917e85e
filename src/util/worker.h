/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

/* Work off the event loop: a few threads take jobs from a bounded queue, and each job's done callback
 * runs on the event loop afterwards (the threads wake it through an eventfd). The work function must be
 * pure as far as the loop is concerned: it touches nothing but its job's own data and what is safe from
 * any thread (the conf parsers are: see conf-schema.c and conf-node.c; libxml2 wants xmlInitParser()
 * called before threads use it). */
typedef struct Worker Worker;

/* In a worker thread. */
typedef void (*WorkFunc)(void *userdata);
/* On the event loop, once work has run; cancelled when it never will (the worker is being freed). */
typedef void (*WorkDoneFunc)(void *userdata, bool cancelled);

/* nice: the threads' nice value relative to the process (0: as the loop). */
int worker_new(sd_event *event, unsigned n_threads, size_t queue_max, int nice, Worker **ret);
/* Stops the threads after their current job; the done callbacks of jobs not run are called (cancelled),
 * and those of jobs run but not yet delivered too (not cancelled). */
Worker *worker_free(Worker *w);

/* The jobs no thread has taken yet are dropped: their done callbacks run here, now, cancelled (virtbusd
 * is stopping: what waits behind a job that hangs is answered without waiting for it). */
void worker_cancel_queued(Worker *w);

/* A thread is running a job now. */
bool worker_running(Worker *w);

/* Queues a job; -EAGAIN when queue_max jobs wait already, -ENOMEM. */
int worker_submit(Worker *w, WorkFunc work, WorkDoneFunc done, void *userdata);

/* Blocks until every queued job has run, then calls the done callbacks of all finished ones, here. For
 * the rare caller that must see a job's effect before going on (an order to keep with synchronous work). */
void worker_wait(Worker *w);
