"""Use cases of the platform; routers call these, these call the store, artifacts and runner."""
