"""viewmodel"""
