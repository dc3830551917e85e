/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* placeholder: the conf layer grows here */
int conf_placeholder(void);
int conf_placeholder(void) { return 0; }
