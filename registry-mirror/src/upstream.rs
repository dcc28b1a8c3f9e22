//! The client of one upstream registry. (Being written on branch `upstream`.)
