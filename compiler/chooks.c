/* chooks.c — checking a model's C hooks against the C file that defines them.
 *
 * A custom function given as {c_function: f, c_gradient: g} is linked in
 * from the user's C file (nncc train --c-source FILE). With libclang (the
 * CMake option NNCC_WITH_LIBCLANG, on when libclang-dev is found) nncc
 * parses FILE and checks that each hooked function exists with the
 * signature its role needs — float f(float) or float f(float, float) —
 * and reports a mismatch at the hook's line in the model file, instead of
 * a link error or a crash later. Without libclang the file is only linked.
 */
#include "compiler.h"

#include <string.h>

#ifdef NNCC_HAVE_LIBCLANG
#include <clang-c/Index.h>

typedef struct {
    const char *name;
    bool found;
    CXType result;
    int nargs;
    CXType args[4];
    unsigned line;
} Lookup;

static enum CXChildVisitResult visit(CXCursor c, CXCursor parent, CXClientData data)
{
    (void)parent;
    Lookup *l = data;
    if (clang_getCursorKind(c) != CXCursor_FunctionDecl)
        return CXChildVisit_Continue;
    CXString s = clang_getCursorSpelling(c);
    bool match = !strcmp(clang_getCString(s), l->name);
    clang_disposeString(s);
    if (!match || (l->found && !clang_isCursorDefinition(c)))
        return CXChildVisit_Continue;
    l->found = true;
    l->result = clang_getCanonicalType(clang_getCursorResultType(c));
    l->nargs = clang_Cursor_getNumArguments(c);
    for (int i = 0; i < l->nargs && i < 4; i++)
        l->args[i] = clang_getCanonicalType(clang_getArgType(clang_getCursorType(c), (unsigned)i));
    clang_getSpellingLocation(clang_getCursorLocation(c), NULL, &l->line, NULL, NULL);
    return CXChildVisit_Continue;
}

static int check_one(CXTranslationUnit tu, const char *file, const CustomFn *f, const char *fn, Loc loc)
{
    Lookup l = {.name = fn};
    clang_visitChildren(clang_getTranslationUnitCursor(tu), visit, &l);
    bool two = !strcmp(f->role, "loss") || !strcmp(f->role, "metric");
    const char *want = two ? "float (float y_true, float y_pred)" : "float (float)";
    if (!l.found) {
        error_at(loc, "%s defines no function '%s' for the custom %s '%s'", file, fn, f->role, f->name);
        hint("define  float %s%s", fn, two ? "(float y_true, float y_pred)" : "(float x)");
        return -1;
    }
    bool ok = l.result.kind == CXType_Float && l.nargs == (two ? 2 : 1);
    for (int i = 0; ok && i < l.nargs; i++)
        ok = l.args[i].kind == CXType_Float;
    if (ok)
        return 0;
    char got[256] = "";
    CXString r = clang_getTypeSpelling(l.result);
    snprintf(got, sizeof got, "%s (", clang_getCString(r));
    clang_disposeString(r);
    for (int i = 0; i < l.nargs && i < 4; i++) {
        CXString a = clang_getTypeSpelling(l.args[i]);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? ", " : "", clang_getCString(a));
        clang_disposeString(a);
    }
    strncat(got, ")", sizeof got - strlen(got) - 1);
    error_at(loc, "'%s' in %s:%u is %s; the custom %s '%s' needs %s", fn, file, l.line, got, f->role, f->name, want);
    return -1;
}

int check_c_hooks(const char *file, const Model *m)
{
    bool any = false;
    for (int i = 0; i < m->ncustoms; i++)
        any |= m->customs[i]->c_function != NULL;
    if (!any || !file)
        return 0;
    CXIndex index = clang_createIndex(0, 0);
    CXTranslationUnit tu = clang_parseTranslationUnit(index, file, NULL, 0, NULL, 0, CXTranslationUnit_None);
    int rc = 0;
    if (!tu) {
        rc = error_plain("cannot parse the C hooks file '%s'", file);
    } else {
        for (int i = 0; i < m->ncustoms && rc == 0; i++) {
            const CustomFn *f = m->customs[i];
            if (f->c_function)
                rc = check_one(tu, file, f, f->c_function, f->c_function_loc);
            if (rc == 0 && f->c_gradient)
                rc = check_one(tu, file, f, f->c_gradient, f->c_gradient_loc);
        }
        clang_disposeTranslationUnit(tu);
    }
    clang_disposeIndex(index);
    return rc;
}

#else

int check_c_hooks(const char *file, const Model *m)
{
    (void)file;
    (void)m;
    return 0;  /* built without libclang: the hooks are only linked */
}

#endif
