/*
 * diff - unified line diff of two texts (Myers' O(ND) algorithm).
 *
 * Used for reviewing a candidate prompt against its parent. Output follows
 * GNU diff -u: `---`/`+++` headers, `@@ -a,b +c,d @@` hunks with 3 lines of
 * context, and "\ No newline at end of file" where a text lacks one. When the
 * texts differ in more than DIFF_MAX_EDITS lines (or finding out takes too
 * long) the middle is reported as a whole replacement (still a correct diff,
 * only not minimal); a few changes in a long text stay a few changes.
 * Stateless.
 */
#ifndef REFOLD_DIFF_H
#define REFOLD_DIFF_H

#include <stddef.h>

#define DIFF_MAX_EDITS 4000

struct diff_result {
    char *unified; /* caller frees; "" when the texts are equal */
    int added;     /* lines added */
    int removed;   /* lines removed */
};

/* Diff a against b, labelling them a_label and b_label in the headers. */
void diff_lines(const char *a, const char *b, const char *a_label, const char *b_label,
                struct diff_result *out);

#endif
