#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
static void test_core_placeholder(void **state) { (void)state; assert_true(1); }
int main(void) { const struct CMUnitTest t[] = { cmocka_unit_test(test_core_placeholder) }; return cmocka_run_group_tests(t, NULL, NULL); }
