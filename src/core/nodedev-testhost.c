/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test driver's simulated host: without --sysfs-root it reads a copy of data/test-host-sysfs (an
 * SR-IOV NIC with two VFs, a GPU and its audio function in one IOMMU group, a USB receiver) made in the
 * runtime directory, and when the fake kernel of the tests is at hand (a build tree) it runs it on the
 * copy, so that Detach, SetVirtualFunctions... behave there as on a real host. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "core/manager.h"
#include "core/nodedev-internal.h"
#include "host/host.h"
#include "util/log.h"

static int run(const char *const argv[]) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                execv(argv[0], (char * const *) argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int start_fake_kernel(NodeDevState *s, const char *root) {
        const char *kernel = VB_BUILD_ROOT "/tests/helpers/fake-sysfs-kernel";
        char ready[16] = "";
        int pfd[2];
        pid_t pid;

        if (access(kernel, X_OK) < 0)
                return log_info_errno(errno, "No fake kernel for the simulated host ('%s'): its devices can be "
                                      "read but not changed.", kernel);
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                sigset_t none;

                /* sd-event blocks the signals it handles: the child must not inherit that. */
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                dup2(pfd[1], STDOUT_FILENO);
                execl(kernel, kernel, root, (char *) NULL);
                _exit(127);
        }
        close(pfd[1]);
        if (read(pfd[0], ready, sizeof ready - 1) <= 0 || !strstr(ready, "ready")) {
                close(pfd[0]);
                kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return -EIO;
        }
        close(pfd[0]);
        s->fake_kernel_pid = pid;
        return 0;
}

/* The simulated host is made once per runtime dir (a boot of the "host") and kept across restarts of
 * virtbusd, as a real host keeps its devices' state: copied to a temporary name, then renamed. */
static int test_host_copy(const char *src, const char *root) {
        _cleanup_free_ char *tmp = NULL;
        int r;

        if (asprintf(&tmp, "%s.new", root) < 0)
                return -ENOMEM;
        r = run((const char *const[]) { "/bin/rm", "-rf", tmp, NULL });
        if (r >= 0)
                r = run((const char *const[]) { "/bin/cp", "-a", src, tmp, NULL });
        if (r >= 0 && rename(tmp, root) < 0)
                r = -errno;
        return r;
}

int manager_nodedev_test_host_setup(Manager *m) {
        _cleanup_free_ char *root = NULL;
        const char *src = VB_DATADIR "/test-host-sysfs";
        int r = 0;

        if (access(src, F_OK) < 0)
                src = VB_SOURCE_ROOT "/data/test-host-sysfs";
        if (asprintf(&root, "%s/test-host-sysfs", m->runtime_dir) < 0)
                return -ENOMEM;
        if (access(root, F_OK) < 0)
                r = test_host_copy(src, root);
        if (r < 0)
                return log_warning_errno(r, "Failed to set up the simulated host from '%s', using /sys: %m", src);
        r = host_set_sysfs_root(root);
        if (r < 0)
                return r;
        free(m->sysfs_root);
        m->sysfs_root = TAKE_PTR(root);
        (void) start_fake_kernel(&m->nodedev, m->sysfs_root);
        log_info("Simulated host devices below '%s'.", m->sysfs_root);
        return 0;
}

void manager_nodedev_test_host_stop(Manager *m) {
        if (m->nodedev.fake_kernel_pid <= 0)
                return;
        kill(m->nodedev.fake_kernel_pid, SIGTERM);
        (void) waitpid(m->nodedev.fake_kernel_pid, NULL, 0);
        m->nodedev.fake_kernel_pid = 0;
}
