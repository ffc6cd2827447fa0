/*
 * prompts - the meta-prompts of the Prompt Improvement job.
 *
 * Each meta-prompt is a Markdown file in src/improve/prompts/, compiled into
 * the binary and readable by a prompt engineer. The variable parts are
 * `{%name%}` placeholders (a syntax that cannot collide with the `{{name}}`
 * variables of the prompts being improved) filled by code. Stateless.
 */
#ifndef REFOLD_IMPROVE_PROMPTS_H
#define REFOLD_IMPROVE_PROMPTS_H

#include <jansson.h>

#include "core/status.h"

/* Render prompts/NAME.md with the string values of vars (a JSON object). Every
 * placeholder must have a value and every value must be used: a mismatch is a bug and
 * fails with RF_INTERNAL. *out is the caller's (free). */
enum rf_status prompt_render(const char *name, const json_t *vars, char **out,
                             struct rf_err *err);

#endif
