/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* util/png.c: PPM headers as QEMU writes them (and what is refused), and PNGs decoded back here with
 * zlib's inflate: signature, IHDR, chunk CRCs, filter bytes and every pixel. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "util/png.h"

static uint32_t get32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Walks the chunks, checks each CRC, and inflates the IDATs into *ret_raw. */
static void decode(const uint8_t *png, size_t n, uint32_t *w, uint32_t *h, uint8_t **ret_raw, size_t *ret_raw_n) {
        static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        uint8_t *idat = NULL;
        size_t idat_n = 0, i = 8;
        bool end = false;
        uLongf raw_n;

        assert_true(n > 8);
        assert_memory_equal(png, sig, 8);
        while (i < n) {
                uint32_t len = get32(png + i);
                const uint8_t *type = png + i + 4;

                assert_true(i + 12 + len <= n);
                assert_int_equal(crc32(crc32(0, Z_NULL, 0), type, len + 4), get32(png + i + 8 + len));
                if (memcmp(type, "IHDR", 4) == 0) {
                        assert_int_equal(i, 8);
                        assert_int_equal(len, 13);
                        *w = get32(type + 4);
                        *h = get32(type + 8);
                        assert_memory_equal(type + 12, ((const uint8_t[]) { 8, 2, 0, 0, 0 }), 5);
                } else if (memcmp(type, "IDAT", 4) == 0) {
                        idat = realloc(idat, idat_n + len);
                        assert_non_null(idat);
                        memcpy(idat + idat_n, type + 4, len);
                        idat_n += len;
                } else if (memcmp(type, "IEND", 4) == 0) {
                        assert_int_equal(len, 0);
                        end = true;
                }
                i += 12 + len;
        }
        assert_true(end);
        assert_int_equal(i, n);
        raw_n = (uLongf) (*w * 3 + 1) * *h;
        *ret_raw = malloc(raw_n);
        assert_non_null(*ret_raw);
        assert_int_equal(uncompress(*ret_raw, &raw_n, idat, idat_n), Z_OK);
        *ret_raw_n = raw_n;
        free(idat);
}

static void roundtrip(uint32_t w, uint32_t h, size_t stride, int level) {
        uint8_t *pixels = malloc(stride * h), *raw;
        void *png;
        size_t n, raw_n;
        uint32_t dw = 0, dh = 0;

        assert_non_null(pixels);
        for (size_t k = 0; k < stride * h; k++)
                pixels[k] = (uint8_t) (k * 7 + k / 13);
        assert_int_equal(png_encode_rgb(pixels, w, h, stride, level, &png, &n), 0);
        decode(png, n, &dw, &dh, &raw, &raw_n);
        assert_int_equal(dw, w);
        assert_int_equal(dh, h);
        assert_int_equal(raw_n, (size_t) (w * 3 + 1) * h);
        for (uint32_t y = 0; y < h; y++) {
                assert_int_equal(raw[y * (w * 3 + 1)], 0);
                assert_memory_equal(raw + y * (w * 3 + 1) + 1, pixels + y * stride, w * 3);
        }
        free(raw);
        free(png);
        free(pixels);
}

static void test_png_roundtrip(void **state) {
        roundtrip(1, 1, 3, 1);
        roundtrip(720, 400, 720 * 3, 1);
        /* Rows with padding between them; the stored (level 0) and the default level too. */
        roundtrip(33, 17, 33 * 3 + 5, 0);
        roundtrip(64, 48, 64 * 3, 6);
}

static void test_png_refused(void **state) {
        uint8_t px[3] = {};
        void *png = NULL;
        size_t n = 0;

        assert_int_equal(png_encode_rgb(px, 0, 1, 3, 1, &png, &n), -EINVAL);
        assert_int_equal(png_encode_rgb(px, 1, 0, 3, 1, &png, &n), -EINVAL);
        assert_int_equal(png_encode_rgb(px, 2, 1, 3, 1, &png, &n), -EINVAL); /* stride shorter than a row */
        assert_int_equal(png_encode_rgb(px, 40000, 1, 120000, 1, &png, &n), -EINVAL);
        assert_null(png);
}

static void test_ppm(void **state) {
        static const char good[] = "P6\n2 1\n255\n\1\2\3\4\5\6";
        static const char comment[] = "P6 # QEMU writes none, others do\n2\t1 255\n\1\2\3\4\5\6";
        const uint8_t *pixels;
        uint32_t w = 0, h = 0;

        assert_int_equal(ppm_parse(good, sizeof good - 1, &w, &h, &pixels), 0);
        assert_int_equal(w, 2);
        assert_int_equal(h, 1);
        assert_memory_equal(pixels, "\1\2\3\4\5\6", 6);
        assert_int_equal(ppm_parse(comment, sizeof comment - 1, &w, &h, &pixels), 0);
        assert_memory_equal(pixels, "\1\2\3\4\5\6", 6);

        /* Short data, other formats and depths, absurd sizes, a header without its last whitespace. */
        assert_int_equal(ppm_parse(good, sizeof good - 2, &w, &h, &pixels), -EBADMSG);
        assert_int_equal(ppm_parse("P3\n1 1\n255\n1 2 3", 16, &w, &h, &pixels), -EBADMSG);
        assert_int_equal(ppm_parse("P6\n1 1\n65535\n123456", 19, &w, &h, &pixels), -EBADMSG);
        assert_int_equal(ppm_parse("P6\n0 1\n255\n", 11, &w, &h, &pixels), -EBADMSG);
        assert_int_equal(ppm_parse("P6\n99999999999 1\n255\n", 21, &w, &h, &pixels), -EBADMSG);
        assert_int_equal(ppm_parse("P6\n1 1\n255", 10, &w, &h, &pixels), -EBADMSG);
        assert_int_equal(ppm_parse("P6", 2, &w, &h, &pixels), -EBADMSG);
        assert_int_equal(ppm_parse("", 0, &w, &h, &pixels), -EBADMSG);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_png_roundtrip),
                cmocka_unit_test(test_png_refused),
                cmocka_unit_test(test_ppm),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
