#include "framework/task.hpp"
