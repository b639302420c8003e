// Compiled by the test layering.upward_include_fails in the include context of the driver layer
// (vlunfs_vlun), and expected not to: fs/ is a layer above vlun/ (docs/design.md, "The stack").
// The first two lines must resolve (the layer's own header, the public header of the layer below),
// so the compile can only stop at the third, naming fs/filesystem.h. (Not in include order: on
// purpose.)
#include "vlun/driver_impl.h"
#include "vlunfs/afu.h"
#include "fs/filesystem.h"
