using System;
using System.IO;
using System.Text;
using System.Xml;
using System.Xml.XPath;

namespace CSFMSEJournalInterface
{
    /// <summary>
    /// The SOAP 1.1 messages of the E-Journal service: the request envelope, written once per
    /// call, and the answer: the operation's result document, or a fault.
    /// </summary>
    internal static class SoapMessages
    {
        internal const string ServiceNamespace = "urn:fng-gateway:ejournal";
        internal const string FaultNamespace = "urn:fng-gateway:fault";
        internal const string EnvelopeNamespace = "http://schemas.xmlsoap.org/soap/envelope/";

        /// <summary>The value of the SOAPAction header for an operation, quoted.</summary>
        internal static string Action(string operation)
        {
            return "\"" + ServiceNamespace + "/" + operation + "\"";
        }

        /// <summary>
        /// The UTF-8 request envelope: the AuthHeader, then the operation element with one
        /// text parameter. A document parameter is passed as its markup, which is written
        /// escaped as text, exactly as given.
        /// </summary>
        internal static byte[] Request(
            string operation,
            string parameter,
            string value,
            string username,
            string password,
            string database)
        {
            var settings = new XmlWriterSettings();
            settings.Encoding = new UTF8Encoding(false);
            settings.Indent = false;
            // A carriage return is written as &#xD; so the gateway reads back exactly what was
            // given; a bare line feed needs nothing.
            settings.NewLineHandling = NewLineHandling.Entitize;
            settings.CheckCharacters = true;
            using (var buffer = new MemoryStream())
            {
                using (XmlWriter writer = XmlWriter.Create(buffer, settings))
                {
                    writer.WriteStartDocument();
                    writer.WriteStartElement("soap", "Envelope", EnvelopeNamespace);
                    writer.WriteAttributeString("xmlns", "ej", null, ServiceNamespace);
                    writer.WriteStartElement("soap", "Header", EnvelopeNamespace);
                    writer.WriteStartElement("ej", "AuthHeader", ServiceNamespace);
                    Text(writer, "Username", username, "username");
                    Text(writer, "Password", password, "password");
                    Text(writer, "Database", database, "database");
                    writer.WriteEndElement();
                    writer.WriteEndElement();
                    writer.WriteStartElement("soap", "Body", EnvelopeNamespace);
                    writer.WriteStartElement("ej", operation, ServiceNamespace);
                    Text(writer, parameter, value, parameter);
                    writer.WriteEndElement();
                    writer.WriteEndElement();
                    writer.WriteEndElement();
                    writer.WriteEndDocument();
                }
                return buffer.ToArray();
            }
        }

        private static void Text(XmlWriter writer, string name, string value, string argument)
        {
            writer.WriteStartElement("ej", name, ServiceNamespace);
            try
            {
                writer.WriteString(value);
            }
            catch (ArgumentException)
            {
                throw new ArgumentException(
                    argument + " holds a character that XML cannot carry (a control character "
                    + "or a broken surrogate pair); remove it and call again.",
                    argument);
            }
            writer.WriteEndElement();
        }

        /// <summary>
        /// The markup of a journal as the caller built it: the document element of an
        /// <see cref="XmlDocument"/>, an <see cref="XmlElement"/> as it is, or the element a
        /// navigator stands on (else its document element), written without indentation.
        /// </summary>
        internal static string Markup(IXPathNavigable xmlData)
        {
            var document = xmlData as XmlDocument;
            if (document != null)
            {
                if (document.DocumentElement == null)
                {
                    throw new ArgumentException("xmlData is an empty XmlDocument: load the journal first.", "xmlData");
                }
                return document.DocumentElement.OuterXml;
            }
            var element = xmlData as XmlElement;
            if (element != null)
            {
                return element.OuterXml;
            }

            XPathNavigator navigator = xmlData.CreateNavigator();
            if (navigator == null)
            {
                throw new ArgumentException("xmlData gives no navigator to read the journal with.", "xmlData");
            }
            if (navigator.NodeType != XPathNodeType.Element)
            {
                navigator.MoveToRoot();
                if (!navigator.MoveToChild(XPathNodeType.Element))
                {
                    throw new ArgumentException("xmlData holds no journal element.", "xmlData");
                }
            }
            var settings = new XmlWriterSettings();
            settings.OmitXmlDeclaration = true;
            settings.Indent = false;
            settings.NewLineHandling = NewLineHandling.None;
            settings.ConformanceLevel = ConformanceLevel.Fragment;
            var text = new StringBuilder();
            using (XmlWriter writer = XmlWriter.Create(text, settings))
            {
                navigator.WriteSubtree(writer);
            }
            return text.ToString();
        }

        /// <summary>
        /// Parses an answer safely (no DTD, nothing fetched). Null when it is not XML, or not a
        /// SOAP 1.1 envelope with a body element.
        /// </summary>
        internal static XmlElement BodyElement(byte[] data)
        {
            if (data == null || data.Length == 0)
            {
                return null;
            }
            var settings = new XmlReaderSettings();
            settings.DtdProcessing = DtdProcessing.Prohibit;
            settings.XmlResolver = null;
            settings.IgnoreComments = true;
            settings.IgnoreProcessingInstructions = true;
            var document = new XmlDocument();
            document.XmlResolver = null;
            try
            {
                using (var stream = new MemoryStream(data, false))
                using (XmlReader reader = XmlReader.Create(stream, settings))
                {
                    document.Load(reader);
                }
            }
            catch (XmlException)
            {
                return null;
            }
            XmlElement envelope = document.DocumentElement;
            if (envelope == null || !Is(envelope, "Envelope", EnvelopeNamespace))
            {
                return null;
            }
            XmlElement body = Child(envelope, "Body", EnvelopeNamespace);
            return body == null ? null : FirstElement(body);
        }

        /// <summary>Whether a body element is a SOAP 1.1 fault.</summary>
        internal static bool IsFault(XmlElement element)
        {
            return Is(element, "Fault", EnvelopeNamespace);
        }

        /// <summary>The gateway's fault: its faultstring, and from its GatewayFault detail the
        /// code and request id. Null when the fault is not the gateway's (no GatewayFault).</summary>
        internal static GatewayFault ReadFault(XmlElement fault)
        {
            XmlElement detail = Child(fault, "detail", string.Empty);
            XmlElement gatewayFault = detail == null ? null : Child(detail, "GatewayFault", FaultNamespace);
            if (gatewayFault == null)
            {
                return null;
            }
            XmlElement code = Child(gatewayFault, "code", FaultNamespace);
            if (code == null || code.InnerText.Trim().Length == 0)
            {
                return null;
            }
            XmlElement requestId = Child(gatewayFault, "requestId", FaultNamespace);
            XmlElement faultString = Child(fault, "faultstring", string.Empty);
            return new GatewayFault(
                code.InnerText.Trim(),
                faultString == null ? string.Empty : faultString.InnerText,
                requestId == null ? null : requestId.InnerText.Trim());
        }

        /// <summary>
        /// The result document of <c>{operation}Response/{operation}Result</c>, or null when
        /// the element is not that response.
        /// </summary>
        internal static XmlElement Result(XmlElement response, string operation)
        {
            if (!Is(response, operation + "Response", ServiceNamespace))
            {
                return null;
            }
            XmlElement result = Child(response, operation + "Result", ServiceNamespace);
            return result == null ? null : FirstElement(result);
        }

        /// <summary>The boolean child <c>name</c> of a response element (false when absent).</summary>
        internal static bool Flag(XmlElement response, string name)
        {
            XmlElement flag = Child(response, name, ServiceNamespace);
            if (flag == null)
            {
                return false;
            }
            try
            {
                return XmlConvert.ToBoolean(flag.InnerText.Trim());
            }
            catch (FormatException)
            {
                return false;
            }
        }

        /// <summary>A new document holding a copy of <paramref name="element"/> as its document
        /// element, with an XML declaration when one is given.</summary>
        internal static XmlDocument Document(XmlElement element, string declaredEncoding)
        {
            var document = new XmlDocument();
            document.XmlResolver = null;
            if (declaredEncoding != null)
            {
                document.AppendChild(document.CreateXmlDeclaration("1.0", declaredEncoding, null));
            }
            document.AppendChild(document.ImportNode(element, true));
            return document;
        }

        private static bool Is(XmlElement element, string localName, string namespaceUri)
        {
            return element.LocalName == localName && element.NamespaceURI == namespaceUri;
        }

        private static XmlElement Child(XmlElement parent, string localName, string namespaceUri)
        {
            for (XmlNode node = parent.FirstChild; node != null; node = node.NextSibling)
            {
                var element = node as XmlElement;
                if (element != null && Is(element, localName, namespaceUri))
                {
                    return element;
                }
            }
            return null;
        }

        private static XmlElement FirstElement(XmlElement parent)
        {
            for (XmlNode node = parent.FirstChild; node != null; node = node.NextSibling)
            {
                var element = node as XmlElement;
                if (element != null)
                {
                    return element;
                }
            }
            return null;
        }
    }

    /// <summary>A SOAP fault sent by the gateway.</summary>
    internal sealed class GatewayFault
    {
        internal GatewayFault(string code, string faultString, string requestId)
        {
            Code = code;
            FaultString = faultString;
            RequestId = requestId;
            int colon = faultString.IndexOf(':');
            if (colon > 0)
            {
                string type = faultString.Substring(0, colon);
                bool name = true;
                foreach (char c in type)
                {
                    name &= char.IsLetterOrDigit(c) || c == '.' || c == '_';
                }
                ExceptionType = name ? type : null;
            }
        }

        /// <summary>The fault's code, such as AUTHENTICATION_FAILED.</summary>
        internal string Code { get; private set; }

        /// <summary>The fault string: <c>[ExceptionType]:[Message]</c>.</summary>
        internal string FaultString { get; private set; }

        /// <summary>The <c>[ExceptionType]</c> part of the fault string, if it has one.</summary>
        internal string ExceptionType { get; private set; }

        /// <summary>The request id the gateway logged the call under.</summary>
        internal string RequestId { get; private set; }
    }
}
