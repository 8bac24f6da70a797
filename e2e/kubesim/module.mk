# Test support finds the project's copy of the upstream Kueue files by an
# absolute path, so a test binary run from any directory finds them
# (GF_SHARED, when set, takes precedence).
$(B)/e2e/kubesim/test/api_testkit.o: CPPFLAGS += \
    -DGF_TESTDATA='"$(abspath e2e/testdata)"'
# The CEL tests install gpufed's own CRDs from the checkout's manifests.
$(B)/e2e/kubesim/test/test_api_cel.o: CPPFLAGS += \
    -DGF_MANIFESTS='"$(abspath manifests)"'
