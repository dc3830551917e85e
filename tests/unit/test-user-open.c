/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* host_open_as: paths opened with a user's rights (as 'nobody'), root's own opens, checks that change
 * nothing, sockets made and owned by the user. Needs root (to become 'nobody'); skips otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/macro.h"

#include "host/user-open.h"

static uid_t nobody;
static char dir[] = "/tmp/virtbus-test-user-open-XXXXXX";

static char *in_dir(const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", dir, name) >= 0);
        return p;
}

static void test_rights_are_the_users(void **state) {
        char *own = in_dir("own.img"), *root_only = in_dir("root-only.img"), *link = in_dir("link");
        int fd;

        /* A file nobody owns, one only root may read, and a link to the latter. */
        fd = open(own, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0 && fchown(fd, nobody, 0) >= 0 && write(fd, "guest", 5) == 5);
        close(fd);
        fd = open(root_only, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0 && write(fd, "secret", 6) == 6);
        close(fd);
        assert_int_equal(symlink(root_only, link), 0);

        HostOpenRequest reqs[] = {
                { .path = own, .mode = HOST_OPEN_READ_WRITE },
                { .path = root_only, .mode = HOST_OPEN_READ },
                { .path = link, .mode = HOST_OPEN_READ },
                { .path = "/etc/shadow", .mode = HOST_OPEN_READ },
                { .path = "/etc/virtbus-test-must-not-exist", .mode = HOST_OPEN_APPEND },
                { .path = "relative", .mode = HOST_OPEN_READ },
        };
        assert_int_equal(host_open_as(nobody, reqs, ELEMENTSOF(reqs)), 0);
        assert_int_equal(reqs[0].error, 0);
        assert_true(reqs[0].fd >= 0);
        {
                char buf[8] = {};
                assert_int_equal(pread(reqs[0].fd, buf, sizeof buf, 0), 5);
                assert_string_equal(buf, "guest");
                /* Blocking again (it was opened non-blocking against FIFOs). */
                assert_false(fcntl(reqs[0].fd, F_GETFL) & O_NONBLOCK);
                assert_true(fcntl(reqs[0].fd, F_GETFD) & FD_CLOEXEC);
        }
        assert_int_equal(reqs[1].error, -EACCES);
        assert_int_equal(reqs[1].fd, -1);
        assert_int_equal(reqs[2].error, -EACCES); /* the link leads where nobody may not go */
        assert_int_equal(reqs[3].error, -EACCES);
        assert_int_equal(reqs[4].error, -EACCES);
        assert_int_equal(access("/etc/virtbus-test-must-not-exist", F_OK), -1);
        assert_int_equal(reqs[5].error, -EINVAL);
        host_open_requests_close(reqs, ELEMENTSOF(reqs));
        assert_int_equal(reqs[0].fd, -1);

        /* Root reads it all; with no_symlinks not through the link. */
        HostOpenRequest root[] = {
                { .path = root_only, .mode = HOST_OPEN_READ },
                { .path = link, .mode = HOST_OPEN_READ },
                { .path = link, .mode = HOST_OPEN_READ, .no_symlinks = true },
        };
        assert_int_equal(host_open_as(0, root, ELEMENTSOF(root)), 0);
        assert_int_equal(root[0].error, 0);
        assert_int_equal(root[1].error, 0);
        assert_int_equal(root[2].error, -ELOOP);
        host_open_requests_close(root, ELEMENTSOF(root));
        unlink(own);
        unlink(root_only);
        unlink(link);
        free(own);
        free(root_only);
        free(link);
}

static void test_create_and_check(void **state) {
        char *log = in_dir("serial.log"), *sock = in_dir("serial.sock"), *sub = in_dir("closed"), *in_sub;
        struct stat st;

        assert_int_equal(mkdir(sub, 0700), 0);
        in_sub = in_dir("closed/x.log");

        /* Checks change nothing. */
        HostOpenRequest checks[] = {
                { .path = log, .mode = HOST_OPEN_APPEND, .check_only = true },
                { .path = sock, .mode = HOST_OPEN_SOCKET_LISTEN, .check_only = true },
                { .path = in_sub, .mode = HOST_OPEN_TRUNCATE, .check_only = true },
                { .path = sock, .mode = HOST_OPEN_SOCKET_CONNECT, .check_only = true },
        };
        assert_int_equal(host_open_as(nobody, checks, ELEMENTSOF(checks)), 0);
        assert_int_equal(checks[0].error, 0);
        assert_int_equal(checks[1].error, 0);
        assert_int_equal(checks[2].error, -EACCES);
        assert_int_equal(checks[3].error, 0); /* not there yet, and the directory is open */
        for (size_t i = 0; i < ELEMENTSOF(checks); i++)
                assert_int_equal(checks[i].fd, -1);
        assert_int_equal(access(log, F_OK), -1);
        assert_int_equal(access(sock, F_OK), -1);

        /* The real thing: created by and for the user. */
        HostOpenRequest reqs[] = {
                { .path = log, .mode = HOST_OPEN_APPEND },
                { .path = sock, .mode = HOST_OPEN_SOCKET_LISTEN },
                { .path = sock, .mode = HOST_OPEN_SOCKET_CONNECT },
        };
        assert_int_equal(host_open_as(nobody, reqs, ELEMENTSOF(reqs)), 0);
        for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
                assert_int_equal(reqs[i].error, 0);
                assert_true(reqs[i].fd >= 0);
        }
        assert_int_equal(stat(log, &st), 0);
        assert_int_equal(st.st_uid, nobody);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_uid, nobody);
        /* The listening socket takes the connection made in the same child. */
        {
                int c = accept(reqs[1].fd, NULL, NULL);
                assert_true(c >= 0);
                assert_int_equal(write(reqs[2].fd, "x", 1), 1);
                char b;
                assert_int_equal(read(c, &b, 1), 1);
                close(c);
        }
        host_open_requests_close(reqs, ELEMENTSOF(reqs));
        unlink(log);
        unlink(sock);
        rmdir(sub);
        free(log);
        free(sock);
        free(sub);
        free(in_sub);
}

/* A new file only: made by and for the user where it may write, never over an existing one (nor through a
 * link), checked without being made. */
static void test_create_new(void **state) {
        char *fresh = in_dir("overlay.qcow2"), *sub = in_dir("closed2"), *in_sub, *link = in_dir("to-shadow");
        struct stat st;

        assert_int_equal(mkdir(sub, 0700), 0);
        in_sub = in_dir("closed2/overlay.qcow2");
        assert_int_equal(symlink("/etc/virtbus-test-must-not-exist", link), 0);

        HostOpenRequest checks[] = {
                { .path = fresh, .mode = HOST_OPEN_CREATE, .check_only = true },
                { .path = in_sub, .mode = HOST_OPEN_CREATE, .check_only = true },
                { .path = "/etc/hostname", .mode = HOST_OPEN_CREATE, .check_only = true },
        };
        assert_int_equal(host_open_as(nobody, checks, ELEMENTSOF(checks)), 0);
        assert_int_equal(checks[0].error, 0);
        assert_int_equal(checks[1].error, -EACCES);
        assert_int_equal(checks[2].error, -EEXIST);
        assert_int_equal(access(fresh, F_OK), -1);

        HostOpenRequest reqs[] = {
                { .path = fresh, .mode = HOST_OPEN_CREATE },
                { .path = fresh, .mode = HOST_OPEN_CREATE },
                { .path = in_sub, .mode = HOST_OPEN_CREATE },
                { .path = link, .mode = HOST_OPEN_CREATE },
        };
        assert_int_equal(host_open_as(nobody, reqs, ELEMENTSOF(reqs)), 0);
        assert_int_equal(reqs[0].error, 0);
        assert_true(reqs[0].fd >= 0);
        assert_int_equal(write(reqs[0].fd, "qcow", 4), 4);
        assert_int_equal(reqs[1].error, -EEXIST);
        assert_int_equal(reqs[2].error, -EACCES);
        assert_int_equal(reqs[3].error, -EEXIST); /* O_EXCL: a link in its place is not followed */
        assert_int_equal(access("/etc/virtbus-test-must-not-exist", F_OK), -1);
        assert_int_equal(stat(fresh, &st), 0);
        assert_int_equal(st.st_uid, nobody);
        assert_int_equal(st.st_mode & 0777, 0600);
        host_open_requests_close(reqs, ELEMENTSOF(reqs));
        unlink(fresh);
        unlink(link);
        rmdir(sub);
        free(fresh);
        free(sub);
        free(in_sub);
        free(link);
}

/* A file we made goes through its directory opened with the user's rights, and only while the name still is
 * that file: one put in its place is left alone. */
static void test_unlink_if_same(void **state) {
        char *made = in_dir("made.qcow2"), *other = in_dir("other");
        const char *name = NULL;
        int fd, dfd = -1, keep;

        assert_int_equal(host_open_one_as(nobody, made, HOST_OPEN_CREATE, &fd), 0);
        assert_int_equal(host_open_parent_as(nobody, made, &dfd, &name), 0);
        assert_string_equal(name, "made.qcow2");

        /* Replaced since: the new file stays. */
        keep = open(other, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(keep >= 0);
        assert_int_equal(rename(other, made), 0);
        assert_int_equal(host_unlinkat_if_same(dfd, name, fd), -ESTALE);
        assert_int_equal(access(made, F_OK), 0);

        /* Still ours: removed; gone: nothing to do. */
        assert_int_equal(host_unlinkat_if_same(dfd, name, keep), 0);
        assert_int_equal(access(made, F_OK), -1);
        assert_int_equal(host_unlinkat_if_same(dfd, name, keep), -ESTALE);

        /* A directory the user may not open. */
        assert_int_equal(host_open_parent_as(nobody, "/root/x", &dfd, &name) < 0, 1);
        assert_int_equal(host_open_parent_as(nobody, "relative", &dfd, &name), -EINVAL);
        close(keep);
        close(fd);
        close(dfd);
        free(made);
        free(other);
}

static void test_unknown_user(void **state) {
        HostOpenRequest q = { .path = "/etc/hostname", .mode = HOST_OPEN_READ };
        /* A uid no account has: refused as a whole, nothing open. */
        assert_int_equal(host_open_as(4000000000U, &q, 1), -ESRCH);
        assert_int_equal(q.fd, -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rights_are_the_users),
                cmocka_unit_test(test_create_and_check),
                cmocka_unit_test(test_create_new),
                cmocka_unit_test(test_unlink_if_same),
                cmocka_unit_test(test_unknown_user),
        };
        struct passwd *pw;
        int r;

        if (geteuid() != 0 || !(pw = getpwnam("nobody"))) {
                fprintf(stderr, "needs root and a user 'nobody', skipping\n");
                return 77;
        }
        nobody = pw->pw_uid;
        if (!mkdtemp(dir) || chmod(dir, 0777) < 0)
                return 1;
        r = cmocka_run_group_tests(tests, NULL, NULL);
        rmdir(dir);
        return r;
}
