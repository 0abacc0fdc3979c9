#!/bin/sh
# Builds CSFMSEJournalInterface.dll and its XML documentation with Mono's C# compiler,
# against the .NET Framework 4.5 reference assemblies, so that the library uses nothing a
# .NET Framework 4.5 machine lacks.
#
#   clients/dotnet/build.sh [OUTDIR]        (default: clients/dotnet/build/)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/build"}
refs=/usr/lib/mono/4.5-api

if ! command -v mcs >/dev/null 2>&1; then
    echo "build.sh: the Mono C# compiler (mcs) is not installed; install mono-devel (apt-get install mono-devel) and run build.sh again." >&2
    exit 1
fi
if [ ! -f "$refs/mscorlib.dll" ]; then
    echo "build.sh: the .NET Framework 4.5 reference assemblies are not in $refs; install mono-devel (apt-get install mono-devel) and run build.sh again." >&2
    exit 1
fi

mkdir -p "$out"
mcs -target:library \
    -out:"$out/CSFMSEJournalInterface.dll" \
    -doc:"$out/CSFMSEJournalInterface.xml" \
    -noconfig -nostdlib \
    -r:"$refs/mscorlib.dll" -r:"$refs/System.dll" -r:"$refs/System.Xml.dll" \
    -langversion:5 -optimize+ -debug- -warn:4 -warnaserror+ \
    -nologo \
    "$here"/src/*.cs
echo "built $out/CSFMSEJournalInterface.dll"
