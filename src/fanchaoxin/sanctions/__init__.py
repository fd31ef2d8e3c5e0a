"""Joint punishment (联合惩戒): the 13 measures, the grading policy, instructions to enterprises, decide()."""
