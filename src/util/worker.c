/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util/worker.h"
#include "util/log.h"
#include "util/loop-watch.h"
#include "util/macro.h"

typedef struct Job Job;
struct Job {
        WorkFunc work;
        WorkDoneFunc done;
        void *userdata;
        Job *next;
};

typedef struct JobList {
        Job *head, *tail;
        size_t n;
} JobList;

struct Worker {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        JobList queued;    /* waiting for a thread */
        JobList finished;  /* run, waiting for the loop */
        size_t queue_max;
        size_t running;    /* taken by a thread, not yet finished */
        int nice;
        bool stopping;
        pthread_cond_t idle; /* signalled when nothing is queued or running */
        pthread_t *threads;
        unsigned n_threads;
        int efd;
        sd_event_source *source;
};

static void list_push(JobList *l, Job *j) {
        j->next = NULL;
        if (l->tail)
                l->tail->next = j;
        else
                l->head = j;
        l->tail = j;
        l->n++;
}

static Job *list_pop(JobList *l) {
        Job *j = l->head;

        if (!j)
                return NULL;
        l->head = j->next;
        if (!l->head)
                l->tail = NULL;
        l->n--;
        return j;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;

        if (w->nice != 0)
                (void) setpriority(PRIO_PROCESS, (id_t) gettid(), w->nice);
        pthread_mutex_lock(&w->lock);
        for (;;) {
                Job *j;

                while (!w->stopping && !w->queued.head)
                        pthread_cond_wait(&w->wake, &w->lock);
                if (w->stopping)
                        break;
                j = list_pop(&w->queued);
                w->running++;
                pthread_mutex_unlock(&w->lock);

                j->work(j->userdata);

                pthread_mutex_lock(&w->lock);
                list_push(&w->finished, j);
                w->running--;
                if (w->running == 0 && !w->queued.head)
                        pthread_cond_broadcast(&w->idle);
                (void) eventfd_write(w->efd, 1);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Delivers what the threads finished, in the order they did. */
static void deliver(Worker *w) {
        JobList done;

        pthread_mutex_lock(&w->lock);
        done = w->finished;
        w->finished = (JobList) {};
        pthread_mutex_unlock(&w->lock);
        loop_watch_note("the answers of %zu jobs of worker threads", done.n);
        for (Job *j; (j = list_pop(&done));) {
                j->done(j->userdata, false);
                free(j);
        }
}

static int on_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        eventfd_t v;

        (void) eventfd_read(w->efd, &v);
        deliver(w);
        return 0;
}

int worker_new(sd_event *event, unsigned n_threads, size_t queue_max, int nice, Worker **ret) {
        Worker *w;
        int r;

        w = new0(Worker, 1);
        if (!w)
                return -ENOMEM;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        pthread_cond_init(&w->idle, NULL);
        w->queue_max = queue_max;
        w->nice = nice;
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                r = -errno;
                worker_free(w);
                return r;
        }
        r = sd_event_add_io(event, &w->source, w->efd, EPOLLIN, on_finished, w);
        if (r < 0) {
                worker_free(w);
                return r;
        }
        w->threads = new0(pthread_t, n_threads);
        if (!w->threads) {
                worker_free(w);
                return -ENOMEM;
        }
        for (; w->n_threads < n_threads; w->n_threads++) {
                r = pthread_create(&w->threads[w->n_threads], NULL, worker_main, w);
                if (r != 0) {
                        worker_free(w);
                        return -r;
                }
        }
        *ret = w;
        return 0;
}

Worker *worker_free(Worker *w) {
        Job *j;

        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_broadcast(&w->wake);
        pthread_mutex_unlock(&w->lock);
        for (unsigned i = 0; i < w->n_threads; i++)
                pthread_join(w->threads[i], NULL);
        free(w->threads);
        while ((j = list_pop(&w->finished))) {
                j->done(j->userdata, false);
                free(j);
        }
        while ((j = list_pop(&w->queued))) {
                j->done(j->userdata, true);
                free(j);
        }
        sd_event_source_disable_unref(w->source);
        if (w->efd >= 0)
                close(w->efd);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->idle);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

void worker_cancel_queued(Worker *w) {
        JobList queued;

        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        queued = w->queued;
        w->queued = (JobList) {};
        if (w->running == 0)
                pthread_cond_broadcast(&w->idle);
        pthread_mutex_unlock(&w->lock);
        for (Job *j; (j = list_pop(&queued));) {
                j->done(j->userdata, true);
                free(j);
        }
}

bool worker_running(Worker *w) {
        bool running;

        pthread_mutex_lock(&w->lock);
        running = w->running > 0;
        pthread_mutex_unlock(&w->lock);
        return running;
}

int worker_submit(Worker *w, WorkFunc work, WorkDoneFunc done, void *userdata) {
        Job *j;

        j = new0(Job, 1);
        if (!j)
                return -ENOMEM;
        *j = (Job) { .work = work, .done = done, .userdata = userdata };
        pthread_mutex_lock(&w->lock);
        if (w->queued.n >= w->queue_max) {
                pthread_mutex_unlock(&w->lock);
                free(j);
                return -EAGAIN;
        }
        list_push(&w->queued, j);
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

void worker_wait(Worker *w) {
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        while (w->running > 0 || w->queued.head)
                pthread_cond_wait(&w->idle, &w->lock);
        pthread_mutex_unlock(&w->lock);
        deliver(w);
}
