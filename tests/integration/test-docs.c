/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* docs/dbus-api.md and docs/virtbusd.8 keep up with interfaces/, the error map, the polkit actions and
 * virtbusd --help. Needs no root. */
#include <dirent.h>
#include <stdio.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "harness.h"

static char *api_md, *man_page;

static char *read_source(const char *rel) {
        _cleanup_free_ char *p = harness_source_path(rel);
        char *s = harness_read_file(p);

        if (!s)
                fail_msg("cannot read %s", p);
        return s;
}

/* roff escapes '-' as '\-'. */
static char *unroff(char *s) {
        char *w = s;
        for (char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] == '-')
                        continue;
                *w++ = *r;
        }
        *w = 0;
        return s;
}

static int setup(void **state) {
        if (!harness_source_root())
                return -1;
        api_md = read_source("docs/dbus-api.md");
        man_page = unroff(read_source("docs/virtbusd.8"));
        return 0;
}

static int teardown(void **state) {
        free(api_md);
        free(man_page);
        return 0;
}

static unsigned missing;

static void expect_in(const char *doc, const char *doc_name, const char *what, const char *kind) {
        if (strstr(doc, what))
                return;
        print_error("%s does not mention %s %s\n", doc_name, kind, what);
        missing++;
}

/* Every node the XPath expression finds, as text. */
static void for_each_xpath(const char *file, const char *expr, void (*cb)(const char *value, const void *userdata),
                           const void *userdata) {
        _cleanup_free_ char *path = harness_source_path(file);
        xmlDocPtr doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
        xmlXPathContextPtr ctx;
        xmlXPathObjectPtr o;

        if (!doc)
                fail_msg("cannot parse %s", path);
        ctx = xmlXPathNewContext(doc);
        o = xmlXPathEvalExpression(BAD_CAST expr, ctx);
        for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
                xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
                cb((const char *) v, userdata);
                xmlFree(v);
        }
        xmlXPathFreeObject(o);
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
}

static void check_member(const char *name, const void *userdata) {
        _cleanup_free_ char *quoted = NULL;

        /* `Name` or `Name(...)` in the reference. */
        assert_true(asprintf(&quoted, "`%s", name) > 0);
        expect_in(api_md, "docs/dbus-api.md", quoted, userdata);
}

static void check_interface(const char *name, const void *userdata) {
        _cleanup_free_ char *heading = NULL;

        assert_true(asprintf(&heading, "## %s\n", name) > 0);
        expect_in(api_md, "docs/dbus-api.md", heading, "a section for interface");
        expect_in(man_page, "docs/virtbusd.8", name, "interface");
}

static void test_interfaces_documented(void **state) {
        _cleanup_free_ char *dir = harness_source_path("interfaces");
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned files = 0;

        assert_non_null(d);
        missing = 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *rel = NULL;
                size_t len = strlen(de->d_name);

                if (strncmp(de->d_name, "org.virtbus1.", 13) != 0 || len < 5 || !streq(de->d_name + len - 4, ".xml"))
                        continue;
                assert_true(asprintf(&rel, "interfaces/%s", de->d_name) > 0);
                for_each_xpath(rel, "/node/interface/@name", check_interface, NULL);
                for_each_xpath(rel, "/node/interface/method/@name", check_member, "method");
                for_each_xpath(rel, "/node/interface/property/@name", check_member, "property");
                for_each_xpath(rel, "/node/interface/signal/@name", check_member, "signal");
                files++;
        }
        closedir(d);
        assert_true(files > 0);
        assert_int_equal(missing, 0);
}

static void check_action(const char *id, const void *userdata) {
        expect_in(api_md, "docs/dbus-api.md", id, "polkit action");
        expect_in(man_page, "docs/virtbusd.8", id, "polkit action");
}

static void test_polkit_actions_documented(void **state) {
        missing = 0;
        for_each_xpath("polkit/org.virtbus1.policy", "/policyconfig/action/@id", check_action, NULL);
        assert_int_equal(missing, 0);
}

static void test_errors_documented(void **state) {
        /* The names in the one error map: VB_ERROR_PREFIX "Name". */
        _cleanup_free_ char *map = read_source("src/bus/bus-error.c");
        unsigned found = 0;

        missing = 0;
        for (const char *p = map; (p = strstr(p, "VB_ERROR_PREFIX \"")); ) {
                _cleanup_free_ char *name = NULL, *full = NULL;
                p += strlen("VB_ERROR_PREFIX \"");
                name = strndup(p, strcspn(p, "\""));
                assert_non_null(name);
                assert_true(asprintf(&full, "`org.virtbus1.Error.%s`", name) > 0);
                expect_in(api_md, "docs/dbus-api.md", full, "error");
                expect_in(man_page, "docs/virtbusd.8", name, "error");
                found++;
        }
        assert_true(found > 0);
        assert_int_equal(missing, 0);
}

static void test_options_documented(void **state) {
        /* Every long option virtbusd --help lists has a paragraph in the man page. */
        const char *argv[] = { harness_daemon_path(), "--help", NULL };
        HarnessResult res = {};
        unsigned found = 0;

        if (!argv[0])
                skip();
        assert_int_equal(harness_run(NULL, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        assert_int_equal(res.status, 0);
        missing = 0;
        for (const char *p = res.out; (p = strstr(p, " --")); ) {
                _cleanup_free_ char *option = NULL;
                p++;
                option = strndup(p, strcspn(p, " =\n"));
                assert_non_null(option);
                expect_in(man_page, "docs/virtbusd.8", option, "option");
                found++;
        }
        harness_result_done(&res);
        assert_true(found >= 10);
        assert_int_equal(missing, 0);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_interfaces_documented),
                cmocka_unit_test(test_polkit_actions_documented),
                cmocka_unit_test(test_errors_documented),
                cmocka_unit_test(test_options_documented),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
