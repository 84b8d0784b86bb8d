"""The shared contract between every layer of Autopilot.

Everything that crosses a boundary (workflow input, signal, update, query result,
activity argument) is one pydantic model defined here. Models import nothing but
pydantic, so watchers, activities, the CLI and workflows can all depend on them
without depending on each other.
"""
